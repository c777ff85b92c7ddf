import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The hostile HDF5 / polyglot table (Tests/CheckpointsTests/Fixtures/hostile/HOSTILE.json, see HostileInputTests)
/// through the `weights` binary: a refused file exits 1 with one stderr line naming it and holding the row's
/// fragments, leaving no output or temporary file, within time and memory bounds; a safe file converts (exit 0).
final class HostileCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private static let hostile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures/hostile").path

    func testHostileInputsThroughTheBinary() throws {
        let table = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.hostile + "/HOSTILE.json")))
            as? [String: Any])
        let cases = try XCTUnwrap(table["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        let out = tmp.appendingPathComponent("out.safetensors").path
        for c in cases {
            let file = try XCTUnwrap(c["file"] as? String)
            if let fifo = c["needs_fifo"] as? String {
                var st = stat()
                if lstat(fifo, &st) != 0 { _ = mkfifo(fifo, 0o600) }
            }
            let r = try CLI.run(["convert", Self.hostile + "/" + file, "-o", out], timeout: 30)
            XCTAssertFalse(r.timedOut, "\(file): still running after 30 s (killed)")
            XCTAssertLessThan(r.cpuSeconds, 10, "\(file): used \(r.cpuSeconds) s of CPU")
            XCTAssertLessThan(r.seconds, 30, "\(file): took \(r.seconds) s")
            XCTAssertLessThanOrEqual(r.maxRSS, 256 << 20, "\(file): peak RSS \(r.maxRSS >> 20) MiB")
            if let fragment = c["error"] as? String {
                XCTAssertEqual(r.status, 1, "\(file): exit status \(r.status); stderr: \(r.stderr)")
                XCTAssertEqual(r.stderrLines.count, 1, "\(file): stderr is not one line: \(r.stderr.debugDescription)")
                XCTAssertTrue(r.stderr.contains(file), "\(file): stderr does not name the file: \(r.stderr)")
                for f in [fragment] + (c["also"] as? [String] ?? []) {
                    XCTAssertTrue(r.stderr.lowercased().contains(f.lowercased()), "\(file): stderr lacks '\(f)': \(r.stderr)")
                }
                XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(file): an output file was left")
            } else {
                XCTAssertEqual(r.status, 0, "\(file): exit status \(r.status); stderr: \(r.stderr)")
                XCTAssertTrue(r.stdout.contains("(\(c["format"] as? String ?? "?"))"), "\(file): read as another format: \(r.stdout)")
                try? FileManager.default.removeItem(atPath: out)
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".partial-") }
            XCTAssertEqual(left, [], "\(file): temporary files left behind")
        }
    }

    /// The HDF5 fuzz findings (Tests/CheckpointsTests/FuzzCrashes/hdf5-*) through the binary: libhdf5 crashing or
    /// allocating gigabytes in the reader's child is one line and exit 1, with bounded memory (the child's
    /// address-space limit) and no temporary file left.
    func testHDF5FuzzFindingsThroughTheBinary() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CheckpointsTests/FuzzCrashes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("hdf5-") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 4)
        let out = tmp.appendingPathComponent("out.safetensors").path
        for file in files {
            let r = try CLI.run(["convert", dir + "/" + file, "-o", out], timeout: 60)
            XCTAssertFalse(r.timedOut, file)
            XCTAssertEqual(r.status, 1, "\(file): exit status \(r.status); stderr: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(file): \(r.stderr.debugDescription)")
            XCTAssertTrue(r.stderr.contains(file), "\(file): \(r.stderr)")
            XCTAssertLessThanOrEqual(r.maxRSS, 256 << 20, "\(file): peak RSS \(r.maxRSS >> 20) MiB (the reader's child included)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), file)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".partial-") }, [], file)
        }
    }
}
