import Checkpoints
import Foundation
import TensorCore
import XCTest

/// `weights diff` and `weights merge` through the binary: exit codes, the table and `--json` shapes, one-line errors.
final class MergeDiffCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-mergediff-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    private static let testsRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
    private func fixture(_ name: String) -> String { "\(Self.testsRoot)/VerificationTests/Fixtures/\(name)" }
    private func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    private func write(_ tensors: [(String, [Float])], to name: String) throws -> String {
        let p = path(name)
        let sd = StateDict(format: .safetensors, file: "", tensors: tensors.map { TensorEntry(name: $0.0, tensor: Tensor(shape: [$0.1.count], floats: $0.1)) })
        let out = try AtomicOutput(destination: p)
        try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: [:])
        try out.commit()
        return p
    }

    private func json(_ r: CLI.Result) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func testDiffExitCodesAndTable() throws {
        let pth = fixture("resnet18_tiny.zip.pth")
        let st = path("r.safetensors")
        XCTAssertEqual(try CLI.run(["convert", pth, "-o", st]).status, 0)
        let same = try CLI.run(["diff", pth, st])
        XCTAssertEqual(same.status, 0, same.stderr)
        XCTAssertTrue(same.stdout.contains("122 in both (122 equal"), same.stdout)
        XCTAssertTrue(same.stdout.hasSuffix("result: equal\n"), same.stdout)
        XCTAssertTrue(same.stdout.contains("not counted without --metadata"), same.stdout)
        XCTAssertEqual(try CLI.run(["diff", pth, st, "--metadata"]).status, 2)
        let shards = "\(Self.testsRoot)/CheckpointsTests/Fixtures/shards"
        let sharded = try CLI.run(["diff", "\(shards)/st", "\(shards)/original.pth"])
        XCTAssertEqual(sharded.status, 0, sharded.stdout + sharded.stderr)
        XCTAssertTrue(sharded.stdout.contains("13 in both (13 equal"), sharded.stdout)

        let a = try write([("w", [0, 1, 2, 3]), ("gone", [1])], to: "a.safetensors")
        let b = try write([("w", [0, 1, 2.5, 3])], to: "b.safetensors")
        let r = try CLI.run(["diff", a, b])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stdout.contains("max|Δ| 0.5 at [2]: 2.0 vs 2.5; 1 of 4 beyond tolerance"), r.stdout)
        XCTAssertTrue(r.stdout.contains("only in A"), r.stdout)
        XCTAssertEqual(try CLI.run(["diff", a, b, "--atol", "0.5", "--max-report", "0"]).status, 2, "still missing a tensor")
        XCTAssertEqual(try CLI.run(["diff", b, b, "--atol", "0.5"]).status, 0)

        let bad = try CLI.run(["diff", a, path("nope.pth")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderrLines.count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("nope.pth"), bad.stderr)
        XCTAssertEqual(try CLI.run(["diff", a, b, "--atol", "-1"]).status, 64)
    }

    func testDiffJSON() throws {
        let a = try write([("w", [0, 1, 2, 3]), ("gone", [1])], to: "a.safetensors")
        let b = try write([("w", [0, 1, 2.5, 3]), ("new", [2])], to: "b.safetensors")
        let r = try CLI.run(["diff", a, b, "--json", "--atol", "0.1"])
        XCTAssertEqual(r.status, 2, r.stderr)
        let doc = try json(r)
        XCTAssertEqual(doc["equal"] as? Bool, false)
        XCTAssertEqual(doc["atol"] as? Double, 0.1)
        let counts = try XCTUnwrap(doc["counts"] as? [String: Int])
        XCTAssertEqual(counts, ["common": 1, "equal": 0, "different": 1, "not_compared": 0, "only_in_a": 1, "only_in_b": 1])
        let diffs = try XCTUnwrap(doc["differences"] as? [[String: Any]])
        XCTAssertEqual(diffs.map { $0["name"] as? String }, ["w", "gone", "new"])
        XCTAssertEqual(diffs.map { $0["status"] as? String }, ["different", "only_in_a", "only_in_b"])
        let v = try XCTUnwrap(diffs[0]["values"] as? [String: Any])
        XCTAssertEqual(v["compared_as"] as? String, "float64")
        XCTAssertEqual(v["index"] as? [Int], [2])
        XCTAssertEqual(v["a"] as? Double, 2)
        XCTAssertEqual(v["b"] as? Double, 2.5)
        XCTAssertEqual(v["max_abs_diff"] as? Double, 0.5)
        XCTAssertEqual(v["beyond_tolerance"] as? Int, 1)
        XCTAssertEqual(diffs[1]["shape_a"] as? [Int], [1])
        XCTAssertTrue(diffs[1]["shape_b"] is NSNull)
        let limited = try json(try CLI.run(["diff", a, b, "--json", "--max-report", "1"]))
        XCTAssertEqual((limited["differences"] as? [Any])?.count, 1)
        XCTAssertEqual(limited["differences_not_listed"] as? Int, 2)
    }

    func testMergeThroughTheBinary() throws {
        let backbone = fixture("resnet18_cbam_tiny.backbone.pth"), attention = fixture("resnet18_cbam_tiny.attention.safetensors")
        let out = path("cbam.safetensors")
        let r = try CLI.run(["merge", backbone, attention, "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("tensors: 146  overridden: 0"), r.stdout)
        let m = try Checkpoint.open(out)
        XCTAssertEqual(m.tensors.count, 146)
        XCTAssertTrue(m.metadata.contains { $0.name == "merge_sources" })
        // The merged file loads onto the CBAM model under strict and passes verification against PyTorch.
        let v = try CLI.run(["verify", "--model", "resnet18_cbam_tiny", "--weights", out, "--reference",
                             "\(Self.testsRoot)/ModelsTests/Fixtures/resnet18_cbam_tiny.reference.safetensors"])
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
        // diff of the merged file against the attention file: the backbone's tensors are only in A.
        let d = try json(try CLI.run(["diff", out, attention, "--json"]))
        XCTAssertEqual((d["counts"] as? [String: Int])?["only_in_a"], 122)
        XCTAssertEqual((d["counts"] as? [String: Int])?["equal"], 24)

        let a = try write([("x", [1]), ("y", [2])], to: "a.safetensors")
        let b = try write([("y", [3])], to: "b.safetensors")
        let refused = try CLI.run(["merge", a, b, "-o", path("n.safetensors"), "--no-override"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.stderrLines.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("'y' is in both") && refused.stderr.contains("a.safetensors") && refused.stderr.contains("b.safetensors"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("n.safetensors")))
        let overInput = try CLI.run(["merge", a, b, "-o", b, "--force"])
        XCTAssertEqual(overInput.status, 1)
        XCTAssertTrue(overInput.stderr.contains("refusing to write over the input file"), overInput.stderr)
        XCTAssertEqual(try CLI.run(["merge", a, "-o", path("one.safetensors")]).status, 64)
        let h5 = try CLI.run(["merge", a, b, "-o", path("m.h5"), "--to", "h5"])
        XCTAssertEqual(h5.status, 0, h5.stderr)
        XCTAssertEqual(try CLI.run(["diff", path("m.h5"), b, "--json"]).status, 2)
        XCTAssertEqual(try Checkpoint.open(path("m.h5"))["y"]?.load().floats(), [3])
        // Sharded output, as convert --max-shard-size writes it; the folder holding an input is refused.
        let big = try write((0..<6).map { ("t\($0)", [Float](repeating: Float($0), count: 256)) }, to: "big.safetensors")
        let shardDir = path("sharded")
        let sharded = try CLI.run(["merge", big, b, "-o", shardDir, "--max-shard-size", "2KB"])
        XCTAssertEqual(sharded.status, 0, sharded.stderr)
        XCTAssertTrue(sharded.stdout.contains("shards + index"), sharded.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: shardDir + "/model.safetensors.index.json"))
        let fromShards = try Checkpoint.open(shardDir)
        XCTAssertEqual(fromShards.names, (0..<6).map { "t\($0)" } + ["y"])
        let diffShards = try CLI.run(["diff", shardDir, big])
        XCTAssertEqual(diffShards.status, 2)
        XCTAssertTrue(diffShards.stdout.contains("6 in both (6 equal") && diffShards.stdout.contains("1 only in A"), diffShards.stdout)
        let intoInputFolder = try CLI.run(["merge", big, b, "-o", tmp.path, "--max-shard-size", "2KB", "--force"])
        XCTAssertEqual(intoInputFolder.status, 1)
        XCTAssertTrue(intoInputFolder.stderr.contains("refusing to write over the input file"), intoInputFolder.stderr)
        XCTAssertEqual(try CLI.run(["merge", big, b, "-o", path("x"), "--max-shard-size", "2KB", "--to", "h5"]).status, 64)
        XCTAssertEqual(try CLI.run(["merge", big, b, "-o", path("x"), "--to", "dcp"]).status, 64)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: tmp.path).allSatisfy { !$0.contains(".partial-") })
    }

    /// Neutralised pickle globals and tensors the reader cannot represent are handled as `convert` handles them.
    func testGlobalsAndUnsupportedTensorsAsConvertHandlesThem() throws {
        let payload = "\(Self.testsRoot)/WeightsCLITests/Fixtures/payload_beside_tensors_zip.pth"
        let other = try write([("extra", [1])], to: "extra.safetensors")
        let merged = try CLI.run(["merge", payload, other, "-o", path("p.safetensors")])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        XCTAssertTrue(merged.stderr.hasPrefix("warning: ") && merged.stderr.contains("posix.system"), merged.stderr)
        XCTAssertEqual(Set(try Checkpoint.open(path("p.safetensors")).names), ["weight", "bias", "extra"])
        let diff = try CLI.run(["diff", payload, path("p.safetensors")])
        XCTAssertEqual(diff.status, 2, diff.stderr)
        XCTAssertTrue(diff.stderr.contains("posix.system"), diff.stderr)
        for args in [["merge", payload, other, "-o", path("q.safetensors"), "--strict"], ["diff", payload, other, "--strict"]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 1, "\(args)")
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("strict") && r.stderr.contains("posix.system"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("q.safetensors")))

        // Packed quantized, sparse, … tensors: merge refuses naming the first (file and key) unless --skip-unsupported;
        // diff lists them as not compared, which makes the files different.
        let kinds = "\(Self.testsRoot)/CheckpointsTests/Fixtures/realfiles/unsupported_kinds_zip.pth"
        let refused = try CLI.run(["merge", kinds, other, "-o", path("k.safetensors")])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.stderrLines.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("unsupported_kinds_zip.pth") && refused.stderr.contains("key 'z'")
                      && refused.stderr.contains("--skip-unsupported"), refused.stderr)
        let skipped = try CLI.run(["merge", kinds, other, "-o", path("k.safetensors"), "--skip-unsupported"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertEqual(skipped.stderr.split(separator: "\n").filter { $0.hasPrefix("note: skipped") }.count, 5, skipped.stderr)
        XCTAssertEqual(Set(try Checkpoint.open(path("k.safetensors")).names), ["w", "b", "extra"])
        XCTAssertTrue(skipped.stdout.contains("tensors: 3 (5 skipped)"), skipped.stdout)
        let same = try json(try CLI.run(["diff", kinds, kinds, "--json"]))
        XCTAssertEqual(same["equal"] as? Bool, false)
        XCTAssertEqual((same["counts"] as? [String: Int])?["not_compared"], 5)
        XCTAssertEqual((same["counts"] as? [String: Int])?["equal"], 2)
    }
}
