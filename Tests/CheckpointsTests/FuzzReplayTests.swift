import Checkpoints
import Foundation
import XCTest

/// Replays the inputs the fuzz harness (Tools/Fuzz) found and that were minimised into Tests/CheckpointsTests/FuzzCrashes/:
/// each must open and load, or fail with a `CheckpointError` whose description is one line — never trap, hang or
/// exhaust memory. The folder is read through `#filePath`, not the test bundle, so that the fixture tables (which
/// insist on covering every bundled file) do not see it. An input that still crashes a reader takes the whole test
/// process down: commit it together with the fix, not before (see Tools/Fuzz/README.md).
final class FuzzReplayTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCrashes")

    /// Every replayable file: all but the folder's README and hidden files, in name order.
    static func inputs() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") && $0.lastPathComponent != "README.md" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testTheFolderIsFound() {
        // Guards against #filePath pointing elsewhere (the test would otherwise replay nothing and pass).
        XCTAssertTrue(FileManager.default.fileExists(atPath: Self.directory.appendingPathComponent("README.md").path),
                      "no README.md in \(Self.directory.path)")
    }

    func testEveryFuzzFindingOpensOrFailsWithOneLine() throws {
        for url in try Self.inputs() {
            let name = url.lastPathComponent
            let start = Date()
            do {
                let sd = try Checkpoint.open(url.path)
                // The harness skips entries over 64 MiB; so does the replay (a finding is about reading, not size).
                for t in sd.tensors where t.byteCount <= 64 << 20 {
                    let tensor = try t.load()
                    XCTAssertEqual(tensor.dtype, t.dtype, "\(name): '\(t.name)'")
                    XCTAssertEqual(tensor.shape, t.shape, "\(name): '\(t.name)'")
                }
            } catch let e as CheckpointError {
                let line = e.description
                XCTAssertFalse(line.contains("\n") || line.contains("\r"), "\(name): error is not one line: \(line.debugDescription)")
                XCTAssertTrue(line.contains(url.path), "\(name): error does not name the file: \(line)")
                XCTAssertLessThanOrEqual(line.utf8.count, 2000, "\(name): error line of \(line.utf8.count) bytes")
            } catch {
                XCTFail("\(name): threw \(type(of: error)), not a CheckpointError: \(error)")
            }
            // Generous: the point is "no hang", on a loaded machine and a debug build.
            XCTAssertLessThan(Date().timeIntervalSince(start), 30, "\(name): took too long")
        }
    }
}
