import Foundation
import XCTest

/// Tests/CheckpointsTests/Fixtures/crafted (Tools/make_crafted_fixtures.py) through `weights convert`: every case
/// exits 1 with one stderr line naming the file and the row's fragments, leaves no output, and finishes (bounded
/// work: the run is killed after 60 s, a generous bound for a debug build on a shared machine, not a timing); the
/// `safe` rows convert with exit 0.
final class CraftedCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-crafted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures/crafted").path

    private func table() throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.root + "/EXPECTED.json"))) as? [String: Any])
    }

    func testHostileInputsThroughTheBinary() throws {
        let cases = try XCTUnwrap(try table()["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 35)
        let out = tmp.appendingPathComponent("out.safetensors").path
        for c in cases {
            let file = try XCTUnwrap(c["file"] as? String)
            let fragments = [c["fragment"] as? String ?? "?"] + (c["also"] as? [String] ?? [])
            let r = try CLI.run(["convert", Self.root + "/" + file, "-o", out] + (c["args"] as? [String] ?? []), timeout: 60)
            XCTAssertFalse(r.timedOut, "\(file): still running after 60 s (killed)")
            XCTAssertEqual(r.status, 1, "\(file): exit status \(r.status); stderr: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(file): stderr is not one line: \(r.stderr.debugDescription)")
            XCTAssertTrue(r.stderr.contains(file), "\(file): stderr does not name the file: \(r.stderr)")
            for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(file): stderr lacks '\(f)': \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(file): an output file was left")
        }
    }

    func testSafeHostileInputsConvert() throws {
        let safe = try XCTUnwrap(try table()["safe"] as? [[String: Any]])
        XCTAssertFalse(safe.isEmpty)
        for c in safe {
            let file = try XCTUnwrap(c["file"] as? String)
            let out = tmp.appendingPathComponent(file + ".safetensors").path
            let r = try CLI.run(["convert", Self.root + "/" + file, "-o", out], timeout: 60)
            XCTAssertFalse(r.timedOut, "\(file): still running after 60 s")
            XCTAssertEqual(r.status, 0, "\(file): \(r.stderr)")
            if let n = c["tensors"] as? Int { XCTAssertTrue(r.stdout.contains("tensors: \(n) "), r.stdout) }
        }
    }

    /// The zero-copy path copies stored float32 storages without reading them, so their CRC is checked only with
    /// --verify-crc (documented cost: one more read of those members).
    func testVerifyCRCFlag() throws {
        let file = Self.root + "/crc_storage.pth"
        let out = tmp.appendingPathComponent("crc.safetensors").path
        let plain = try CLI.run(["convert", file, "-o", out])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let checked = try CLI.run(["convert", file, "-o", out, "--force", "--verify-crc"])
        XCTAssertEqual(checked.status, 1, checked.stderr)
        XCTAssertTrue(checked.stderr.contains("bad CRC-32"), checked.stderr)
    }

    /// --max-output-bytes takes K/M/G/T suffixes; a cap below the input's declared bytes refuses it.
    func testMaxOutputBytesFlag() throws {
        let file = URL(fileURLWithPath: Self.root).deletingLastPathComponent().appendingPathComponent("torch/training_zip.pth").path
        let out = tmp.appendingPathComponent("cap.safetensors").path
        let small = try CLI.run(["convert", file, "-o", out, "--max-output-bytes", "1K"])
        XCTAssertEqual(small.status, 1, small.stderr)
        XCTAssertTrue(small.stderr.contains("--max-output-bytes cap"), small.stderr)
        let large = try CLI.run(["convert", file, "-o", out, "--max-output-bytes", "1G"])
        XCTAssertEqual(large.status, 0, large.stderr)
        let bad = try CLI.run(["convert", file, "-o", out, "--max-output-bytes", "lots"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
    }

    /// The read flags reach every command that opens a checkpoint: inspect takes the cap, and verify both the cap and
    /// --verify-crc (a stored storage with a bad CRC loads through its mapped bytes unless the flag is given).
    func testReadFlagsOnInspectAndVerify() throws {
        let file = URL(fileURLWithPath: Self.root).deletingLastPathComponent().appendingPathComponent("torch/training_zip.pth").path
        let small = try CLI.run(["inspect", file, "--max-output-bytes", "1K"])
        XCTAssertEqual(small.status, 1, small.stderr)
        XCTAssertTrue(small.stderr.contains("--max-output-bytes cap"), small.stderr)
        XCTAssertEqual(try CLI.run(["inspect", file, "--max-output-bytes", "1G"]).status, 0)

        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let base = ["verify", "--model", "resnet18_tiny", "--weights", tests + "/VerificationTests/Fixtures/resnet18_tiny.zip.pth",
                    "--reference", tests + "/ModelsTests/Fixtures/resnet18_tiny.reference.safetensors"]
        let capped = try CLI.run(base + ["--max-output-bytes", "1K"])
        XCTAssertEqual(capped.status, 1, capped.stderr)
        XCTAssertTrue(capped.stderr.contains("--max-output-bytes cap"), capped.stderr)
        let checked = try CLI.run(base + ["--verify-crc"])
        XCTAssertEqual(checked.status, 0, checked.stderr)
    }
}
