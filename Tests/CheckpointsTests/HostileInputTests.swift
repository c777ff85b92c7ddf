@testable import Checkpoints
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The hostile HDF5 and polyglot inputs of Fixtures/hostile (written by Tools/make_hostile_hdf5.py, listed in
/// hostile/HOSTILE.json): data outside the input file (external storage, virtual datasets, external links), files
/// that are valid in two formats, and chunks that do not decode to a whole chunk. Each row is either refused with
/// one line naming the file and holding the row's fragments, or read as the expected format with exactly the
/// expected tensors (SHA-256 of their bytes, so a read that returns varying heap bytes fails). The same table runs
/// through the `weights` binary in Tests/WeightsCLITests/HostileCLITests.swift.
final class HostileInputTests: XCTestCase {
    struct Case {
        let file: String
        let cls: String
        let error: String?
        let also: [String]
        let format: String?
        let tensors: [String: String]
        let hdf5Error: String?
        let fifo: String?
    }

    static func table() throws -> [Case] {
        let doc = try JSONValue.parse(file: Fixtures.path("hostile/HOSTILE.json"))
        guard let cases = doc["cases"]?.array else { throw JSONValue.ParseError(message: "no cases", offset: 0) }
        return cases.map { c in
            var tensors: [String: String] = [:]
            if case .object(let pairs)? = c["tensors"] { for (k, v) in pairs { tensors[k] = v.string ?? "?" } }
            return Case(file: c["file"]?.string ?? "?", cls: c["class"]?.string ?? "?", error: c["error"]?.string,
                        also: c["also"]?.array?.compactMap(\.string) ?? [], format: c["format"]?.string, tensors: tensors,
                        hdf5Error: c["hdf5_error"]?.string, fifo: c["needs_fifo"]?.string)
        }
    }

    /// Creates the FIFO a row's external storage points at (so that opening it would hang, were it opened).
    static func makeFIFO(_ path: String) {
        var st = stat()
        if lstat(path, &st) == 0 { return }
        _ = mkfifo(path, 0o600)
    }

    func testTableCoversTheFolderAndEveryClass() throws {
        let cases = try Self.table()
        let listed = Set(cases.map(\.file))
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("hostile")))
            .subtracting(["HOSTILE.json", "VERSIONS.txt"])
        XCTAssertEqual(listed.subtracting(present).sorted(), [], "rows without a file")
        XCTAssertEqual(present.subtracting(listed).sorted(), [], "files without a row")
        for needed in ["external storage", "virtual dataset", "external link", "polyglot", "chunk"] {
            XCTAssertTrue(cases.contains { $0.cls.lowercased().contains(needed) || ($0.error ?? "").contains(needed) }, needed)
        }
        XCTAssertTrue(cases.contains { $0.fifo != nil }, "a FIFO target")
        for ub in ["512", "1024"] {
            for ext in ["safetensors", "npy", "pth", "npz"] {
                XCTAssertTrue(listed.contains { $0.hasPrefix("polyglot_") && $0.contains("at_\(ub).") && $0.hasSuffix(ext) }, "\(ext) at \(ub)")
            }
        }
    }

    func testEveryHostileInputIsRefusedOrReadSafely() throws {
        for c in try Self.table() {
            let path = Fixtures.path("hostile/" + c.file)
            if let fifo = c.fifo { Self.makeFIFO(fifo) }
            let start = Date()
            do {
                let sd = try Checkpoint.open(path)
                var got: [String: String] = [:]
                for t in sd.tensors { got[t.name] = SHA256.hex(try t.load().bytes) }
                guard c.error == nil else {
                    XCTFail("\(c.file) [\(c.cls)]: read without error: \(sd.names)")
                    continue
                }
                XCTAssertEqual(sd.format.rawValue, c.format, c.file)
                XCTAssertEqual(got, c.tensors, "\(c.file) [\(c.cls)]")
                // Twice: the same bytes again (no heap bytes that vary from read to read).
                for t in sd.tensors { XCTAssertEqual(SHA256.hex(try t.load().bytes), got[t.name], "\(c.file): \(t.name) on a second load") }
            } catch let e as CheckpointError {
                guard let fragment = c.error else {
                    XCTFail("\(c.file) [\(c.cls)]: should read as \(c.format ?? "?"), but: \(e)")
                    continue
                }
                let line = e.description
                XCTAssertFalse(line.contains("\n"), "\(c.file): not one line: \(line)")
                XCTAssertTrue(line.contains(path), "\(c.file): does not name the file: \(line)")
                for f in [fragment] + c.also {
                    XCTAssertTrue(line.lowercased().contains(f.lowercased()), "\(c.file) [\(c.cls)]: lacks '\(f)': \(line)")
                }
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 30, "\(c.file): took too long (a FIFO or /dev/zero opened?)")
        }
    }

    /// The HDF5 reader on its own refuses a superblock that sits behind another format's valid header.
    func testHDF5ReaderRefusesPolyglotsItself() throws {
        let rows = try Self.table().filter { $0.hdf5Error != nil }
        XCTAssertGreaterThanOrEqual(rows.count, 8)
        for c in rows {
            let path = Fixtures.path("hostile/" + c.file)
            XCTAssertThrowsError(try HDF5Reader.read(path: path), c.file) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(c.hdf5Error!) && text.contains(path), "\(c.file): \(text)")
            }
        }
        // An HDF5 file behind an empty user block is still HDF5.
        XCTAssertEqual(try Checkpoint.sniff(Fixtures.path("hostile/userblock_zeros_at_512.h5")), .hdf5)
        XCTAssertEqual(try HDF5Reader.read(path: Fixtures.path("hostile/userblock_zeros_at_512.h5")).names, ["evil"])
    }

    func testSignatureSearchFollowsLibhdf5() {
        func offset(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { Checkpoint.hdf5SignatureOffset($0) } }
        let sig = Checkpoint.hdf5Signature
        XCTAssertEqual(offset(sig + [0]), 0)
        for at in [512, 1024, 2048, 4096] {
            XCTAssertEqual(offset([UInt8](repeating: 7, count: at) + sig), at)
        }
        // Not at a power-of-two user-block size: libhdf5 would not find it either.
        XCTAssertNil(offset([UInt8](repeating: 7, count: 768) + sig))
        XCTAssertNil(offset([UInt8](repeating: 7, count: 256) + sig))
        XCTAssertNil(offset(Array(sig.prefix(7))))
    }

    /// The walk and every read run in a child process that outlives neither its file's loaders nor a crash: after
    /// the child is killed, the next load starts a new one and still returns the right bytes.
    func testLoadsRunInAChildThatIsReplacedWhenItDies() throws {
        let path = Fixtures.path("hostile/chunked_gzip_ok.h5")
        let (walk, server) = try H5Isolation.walk(path: path)
        guard let server else { throw XCTSkip("WEIGHTS_HDF5_IN_PROCESS is set") }
        let a = try XCTUnwrap(walk.datasets.first { $0.name == "a" })
        let first = try server.load(a).bytes
        XCTAssertEqual(SHA256.hex(first), try Self.table().first { $0.file == "chunked_gzip_ok.h5" }?.tensors["a"])
        XCTAssertNotEqual(server.childPID, getpid())
        let old = server.childPID
        kill(old, SIGKILL)
        usleep(50_000)
        XCTAssertThrowsError(try server.load(a)) { error in
            XCTAssertTrue("\(error)".contains("crashed (signal 9) while reading dataset '/a'"), "\(error)")
        }
        XCTAssertEqual(try server.load(a).bytes, first)
        XCTAssertNotEqual(server.childPID, old)
    }
}
