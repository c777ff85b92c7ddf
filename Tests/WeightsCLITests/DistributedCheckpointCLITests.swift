import Checkpoints
import Foundation
import TensorCore
import XCTest

/// PyTorch Distributed Checkpoints (Tests/CheckpointsTests/Fixtures/dcp, saved by torch 2.15 on 2 and 4 gloo ranks)
/// through the built binary: inspect, convert (all, and `--key model`), and a broken checkpoint's one error line.
final class DistributedCheckpointCLITests: XCTestCase {
    static let fixtures = (((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent as NSString)
        .appendingPathComponent("CheckpointsTests/Fixtures/dcp")
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-dcp-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func out(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func testInspectShowsChunkedTensorsAndItems() throws {
        let r = try CLI.run(["inspect", "\(Self.fixtures)/fsdp4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("format: pytorch-dcp"), r.stdout)
        XCTAssertTrue(r.stdout.contains("4 chunks in __0_0.distcp, __1_0.distcp, __2_0.distcp, __3_0.distcp"), r.stdout)
        XCTAssertTrue(r.stdout.contains("step = 42"), r.stdout)
    }

    func testConvertEqualsTorchReference() throws {
        for name in ["fsdp4", "mesh2d"] {
            let o = out(name + ".safetensors")
            let r = try CLI.run(["convert", "\(Self.fixtures)/\(name)", "-o", o, "--mapping", "none"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let got = try Checkpoint.open(o), ref = try Checkpoint.open("\(Self.fixtures)/\(name)/ref.safetensors")
            XCTAssertEqual(Set(got.names), Set(ref.names), name)
            for t in ref.tensors { XCTAssertEqual(try got[t.name]?.load().bytes, try t.load().bytes, "\(name) \(t.name)") }
        }
    }

    func testKeyModelConvertsTheModelOnly() throws {
        let o = out("model.safetensors")
        let r = try CLI.run(["convert", "\(Self.fixtures)/fsdp2/.metadata", "--key", "model", "-o", o, "--mapping", "none"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Checkpoint.open(o).names, ["scale", "layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"])
    }

    func testConvertToDCPAndBack() throws {
        let dir = out("model.dcp")
        let r = try CLI.run(["convert", "\(Self.fixtures)/fsdp4", "-o", dir, "--to", "dcp", "--ranks", "2", "--mapping", "none"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let back = try CLI.run(["convert", dir, "-o", out("back.safetensors"), "--mapping", "none"])
        XCTAssertEqual(back.status, 0, back.stderr)
        let got = try Checkpoint.open(out("back.safetensors")), ref = try Checkpoint.open("\(Self.fixtures)/fsdp4/ref.safetensors")
        XCTAssertEqual(Set(got.names), Set(ref.names))
        for t in ref.tensors { XCTAssertEqual(try got[t.name]?.load().bytes, try t.load().bytes, t.name) }
        let again = try CLI.run(["convert", "\(Self.fixtures)/fsdp4", "-o", dir, "--to", "dcp"])
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(again.stderrLines.count, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("model.dcp"), again.stderr)
    }

    func testMissingDataFileIsOneErrorLine() throws {
        let dir = out("broken")
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/fsdp2", toPath: dir)
        try FileManager.default.removeItem(atPath: dir + "/__1_0.distcp")
        let r = try CLI.run(["convert", dir, "-o", out("x.safetensors")])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("__1_0.distcp"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out("x.safetensors")))
    }
}
