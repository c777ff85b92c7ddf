import Checkpoints
import Foundation
import XCTest

/// The malformed-input table (Fixtures/bad/EXPECTED.json, written by Tools/make_fixtures.py): every file must fail
/// to open, or to load one of its tensors, with a `CheckpointError` whose description is one line naming the file
/// and containing the row's fragment. The same table is run through the `weights` binary (exit code 1, one line on
/// stderr, time and memory bounds) in Tests/WeightsCLITests/CLITests.swift.
final class MalformedInputTests: XCTestCase {
    struct Case {
        let file: String
        let cls: String
        let fragment: String
        let also: [String]
    }

    static func table() throws -> [Case] {
        let doc = try JSONValue.parse(file: Fixtures.path("bad/EXPECTED.json"))
        guard let cases = doc["cases"]?.array else { throw JSONValue.ParseError(message: "no cases", offset: 0) }
        return cases.map { c in
            Case(file: c["file"]?.string ?? "?", cls: c["class"]?.string ?? "?", fragment: c["fragment"]?.string ?? "?",
                 also: c["also"]?.array?.compactMap(\.string) ?? [])
        }
    }

    func testEveryMalformedInputFailsWithOneClearLine() throws {
        let cases = try Self.table()
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for c in cases {
            let path = Fixtures.path("bad/" + c.file)
            do {
                let sd = try Checkpoint.open(path)
                for t in sd.tensors { _ = try t.load() }
                XCTFail("\(c.file) [\(c.cls)]: read without error (\(sd.tensors.count) tensors, \(sd.metadata.count) metadata entries)")
            } catch let e as CheckpointError {
                let line = e.description
                XCTAssertFalse(line.contains("\n"), "\(c.file): error is not one line: \(line)")
                XCTAssertTrue(line.contains(c.file), "\(c.file): error does not name the file: \(line)")
                for fragment in [c.fragment] + c.also {
                    XCTAssertTrue(line.lowercased().contains(fragment.lowercased()),
                                  "\(c.file) [\(c.cls)]: error lacks '\(fragment)': \(line)")
                }
            } catch {
                XCTFail("\(c.file) [\(c.cls)]: threw \(type(of: error)) instead of CheckpointError: \(error)")
            }
        }
    }

    /// The table and the folder agree: no malformed file goes untested, no row names a missing file.
    func testTableListsEveryFile() throws {
        let listed = Set(try Self.table().map(\.file))
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("bad"))).subtracting(["EXPECTED.json"])
        XCTAssertEqual(listed.subtracting(present).sorted(), [], "rows without a file")
        XCTAssertEqual(present.subtracting(listed).sorted(), [], "files without a row")
        for c in try Self.table() {
            XCTAssertGreaterThanOrEqual(c.fragment.count, 4, "\(c.file): fragment '\(c.fragment)' is too vague")
            XCTAssertFalse(["error", "invalid", "failed", "cannot"].contains(c.fragment.lowercased()),
                           "\(c.file): fragment '\(c.fragment)' would match any error")
        }
    }
}
