@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// The crafted inputs of Fixtures/crafted (written by Tools/make_crafted_fixtures.py, table in EXPECTED.json):
/// ambiguous zips, CRC errors, pickle work bombs, header ambiguities and amplification. Each must fail with one
/// `CheckpointError` line naming the file and the row's fragments; the `safe` rows must read completely. The same
/// table runs through the binary in Tests/WeightsCLITests/CraftedCLITests.swift.
final class CraftedInputTests: XCTestCase {
    struct Case {
        let file: String
        let cls: String
        let fragments: [String]
        let library: Bool
    }

    static func table() throws -> (cases: [Case], safe: [String]) {
        let doc = try JSONValue.parse(file: Fixtures.path("crafted/EXPECTED.json"))
        let cases = (doc["cases"]?.array ?? []).map { c in
            Case(file: c["file"]?.string ?? "?", cls: c["class"]?.string ?? "?",
                 fragments: [c["fragment"]?.string ?? "?"] + (c["also"]?.array?.compactMap(\.string) ?? []),
                 library: c["library"]?.bool ?? true)
        }
        return (cases, (doc["safe"]?.array ?? []).compactMap { $0["file"]?.string })
    }

    func testEveryHostileInputFailsWithOneClearLine() throws {
        let (cases, _) = try Self.table()
        XCTAssertGreaterThanOrEqual(cases.count, 35)
        for c in cases where c.library {
            do {
                let sd = try Checkpoint.open(Fixtures.path("crafted/" + c.file))
                for t in sd.tensors { _ = try t.load() }
                XCTFail("\(c.file) [\(c.cls)]: read without error")
            } catch let e as CheckpointError {
                let line = e.description
                XCTAssertFalse(line.contains("\n"), "\(c.file): not one line: \(line)")
                XCTAssertTrue(line.contains(c.file), "\(c.file): error does not name the file: \(line)")
                for f in c.fragments where !f.hasPrefix("--") {
                    XCTAssertTrue(line.contains(f), "\(c.file) [\(c.cls)]: error lacks '\(f)': \(line)")
                }
            } catch {
                XCTFail("\(c.file): threw \(type(of: error)): \(error)")
            }
        }
    }

    /// The table and the folder agree.
    func testTableListsEveryFile() throws {
        let (cases, safe) = try Self.table()
        let listed = Set(cases.map(\.file) + safe)
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("crafted")).filter { $0 != "EXPECTED.json" })
        XCTAssertEqual(listed, present)
    }

    /// A deflated storage viewed by 5000 tensors reads completely and is inflated once, not once per view.
    func testDeflatedStorageIsInflatedOnce() throws {
        let path = Fixtures.path("crafted/many_views_deflated.pth")
        let sd = try Checkpoint.open(path)
        XCTAssertEqual(sd.tensors.count, 5000)
        for (k, t) in sd.tensors.enumerated() where k % 97 == 0 {
            XCTAssertEqual(try t.load().floats(), [Float((Int(t.name.dropFirst()) ?? 0) % 4096)], t.name)
        }
        let zip = try ZipArchive(path: path)
        let m = try XCTUnwrap(zip.member(named: "archive/data/0"))
        XCTAssertFalse(m.isStored)
        for k in 0..<2000 { _ = try zip.read(m, offset: 4 * (k % 4096), count: 4) }
        XCTAssertEqual(zip.inflations, 1)
    }

    /// A deflated member too large to keep is inflated a bounded number of times, then views of it are refused.
    func testUncachedInflationIsBounded() throws {
        let zip = try ZipArchive(path: Fixtures.path("crafted/many_views_deflated.pth"), verifyCRC: false, cacheBytes: 0)
        let m = try XCTUnwrap(zip.member(named: "archive/data/0"))
        for k in 0..<ZipArchive.maxInflationsPerMember { _ = try zip.read(m, offset: 4 * k, count: 4) }
        XCTAssertThrowsError(try zip.read(m, offset: 0, count: 4)) { XCTAssertTrue("\($0)".contains("already inflated"), "\($0)") }
        XCTAssertEqual(zip.inflations, ZipArchive.maxInflationsPerMember)
    }

    /// Zero-copy spans skip the CRC unless asked (`--verify-crc`); a read into memory always checks it.
    func testZeroCopySpansAreCheckedOnlyWithVerifyCRC() throws {
        let path = Fixtures.path("crafted/crc_storage.pth")
        let plain = try ZipArchive(path: path)
        let m = try XCTUnwrap(plain.member(named: "archive/data/0"))
        XCTAssertNotNil(plain.span(m, offset: 0, count: m.size))
        let checked = try ZipArchive(path: path, verifyCRC: true)
        XCTAssertNil(checked.span(m, offset: 0, count: m.size))
        XCTAssertThrowsError(try plain.read(m)) { XCTAssertTrue("\($0)".contains("bad CRC-32"), "\($0)") }
        // The good members of the same archive still have spans.
        let v = try XCTUnwrap(checked.member(named: "archive/version"))
        XCTAssertNotNil(checked.span(v, offset: 0, count: v.size))
    }

    /// The output cap is the caller's to raise: the 1000 GiB stride-0 pickle opens under a 2 TiB cap.
    func testOutputCapCanBeRaised() throws {
        let path = Fixtures.path("crafted/pickle_stride0_output.pth")
        XCTAssertThrowsError(try Checkpoint.open(path))
        XCTAssertThrowsError(try Checkpoint.open(path, options: ReadOptions(maxOutputBytes: 1 << 30))) {
            XCTAssertTrue("\($0)".contains("--max-output-bytes cap"), "\($0)")
        }
        let sd = try Checkpoint.open(path, options: ReadOptions(maxOutputBytes: 2 << 40))
        XCTAssertEqual(sd.tensors.count, 2000)
    }

    /// Every zip fixture of the suite (torch's writer, Python's zipfile, numpy's savez) passes the strict directory
    /// checks, and the parser agrees with the member list that Python's zipfile reports for one of them.
    func testStrictDirectoryAcceptsRealArchives() throws {
        let root = Fixtures.root.path
        let all = try XCTUnwrap(FileManager.default.enumerator(atPath: root)).compactMap { $0 as? String }
        var checked = 0
        for rel in all where !rel.hasPrefix("bad/") && !rel.hasPrefix("crafted/") && (rel.hasSuffix(".pth") || rel.hasSuffix(".pt") || rel.hasSuffix(".npz")) {
            let p = root + "/" + rel
            guard let head = FileManager.default.contents(atPath: p)?.prefix(2), head == Data("PK".utf8) else { continue }
            let entries = try ZipDirectory.read(path: p)
            XCTAssertFalse(entries.isEmpty, rel)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10)
        let names = try ZipDirectory.read(path: Fixtures.path("torch/training_zip.pth")).map(\.name)
        XCTAssertEqual(names.first, "archive/data.pkl")
        XCTAssertTrue(names.contains("archive/byteorder"))
    }
}
