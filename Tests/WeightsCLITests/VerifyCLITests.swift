import Foundation
import XCTest

/// `weights verify`, `convert --mapping/--model`, `models` and `mappings` through the built binary, on the tiny
/// models' PyTorch fixtures (Tests/ModelsTests/Fixtures, Tests/VerificationTests/Fixtures).
final class VerifyCLITests: XCTestCase {
    static let tests = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    func weights(_ name: String) -> String { "\(Self.tests)/VerificationTests/Fixtures/\(name)" }
    func reference(_ model: String) -> String { "\(Self.tests)/ModelsTests/Fixtures/\(model).reference.safetensors" }

    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testVerifyPassesWithJSONReport() throws {
        let r = try CLI.run(["verify", "--model", "vit_tiny_patch8_32", "--weights", weights("vit_tiny_patch8_32.jax.npz"),
                             "--reference", reference("vit_tiny_patch8_32"), "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try json(r.stdout)
        XCTAssertEqual(doc["passed"] as? Bool, true)
        let out = try XCTUnwrap((doc["outputs"] as? [[String: Any]])?.first)
        for key in ["name", "max_abs_error", "max_abs_reference", "cosine", "top1_agreement"] { XCTAssertNotNil(out[key], key) }
        XCTAssertLessThan(try XCTUnwrap(out["max_abs_error"] as? Double), 1e-5)
        XCTAssertEqual(out["top1_agreement"] as? Double, 1)
        let load = try XCTUnwrap(doc["load"] as? [String: Any])
        XCTAssertEqual((load["applied"] as? [String])?.count, 34)
        for key in ["kept", "missing", "unused", "mismatched"] { XCTAssertEqual((load[key] as? [Any])?.count, 0, key) }
        XCTAssertNotNil(doc["first_divergence"] as? NSNull)
    }

    /// The CBAM merge without the attention file: the load succeeds, the outputs differ (exit 2) and the first
    /// diverging intermediate is named; strict refuses the same file (exit 1) and lists what is missing.
    func testVerifyExitCodesForDifferingOutputsAndStrictFailure() throws {
        let args = ["verify", "--model", "resnet18_cbam_tiny", "--weights", weights("resnet18_cbam_tiny.backbone.pth"),
                    "--reference", reference("resnet18_cbam_tiny")]
        let merged = try CLI.run(args + ["--policy", "merge", "--json"])
        XCTAssertEqual(merged.status, 2, merged.stderr)
        let doc = try json(merged.stdout)
        XCTAssertEqual(doc["passed"] as? Bool, false)
        XCTAssertEqual(doc["first_divergence"] as? String, "layer1")
        XCTAssertEqual(((doc["load"] as? [String: Any])?["kept"] as? [String])?.count, 24)

        let strict = try CLI.run(args)
        XCTAssertEqual(strict.status, 1)
        XCTAssertTrue(strict.stderr.contains("24 model key(s) not provided"), strict.stderr)
        XCTAssertTrue(strict.stderr.contains("layer1.0.ca.fc.0.weight"), strict.stderr)

        let both = try CLI.run(["verify", "--model", "resnet18_cbam_tiny", "--weights", weights("resnet18_cbam_tiny.backbone.pth"),
                                "--weights", weights("resnet18_cbam_tiny.attention.safetensors"), "--reference", reference("resnet18_cbam_tiny")])
        XCTAssertEqual(both.status, 0, both.stdout + both.stderr)
        XCTAssertTrue(both.stdout.hasSuffix("PASS\n"), both.stdout)
    }

    func testVerifyUsageErrors() throws {
        XCTAssertEqual(try CLI.run(["verify", "--model", "resnet18_tiny", "--reference", reference("resnet18_tiny")]).status, 64)
        XCTAssertEqual(try CLI.run(["verify", "--model", "resnet18_tiny", "--weights", "x", "--reference", "y", "--policy", "loose"]).status, 64)
        let unknown = try CLI.run(["verify", "--model", "resnet19", "--weights", weights("resnet18_tiny.zip.pth"), "--reference", reference("resnet18_tiny")])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("resnet19"), unknown.stderr)
    }

    /// convert's default mapping applies the detected table: a JAX npz comes out with timm keys, fused qkv, and
    /// loads back onto the model under strict with PyTorch's output.
    func testConvertAppliesTheDetectedTableAndTheResultLoadsStrictly() throws {
        let dir = NSTemporaryDirectory() + "weights-verify-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/vit.safetensors"
        let c = try CLI.run(["convert", weights("vit_tiny_patch8_32.jax.npz"), "-o", out, "--model", "vit_tiny_patch8_32"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("mapping: vit.jax-npz"), c.stdout)
        let inspect = try json(try CLI.run(["inspect", out, "--json"]).stdout)
        let tensors = try XCTUnwrap(inspect["tensors"] as? [[String: Any]])
        let qkv = try XCTUnwrap(tensors.first { $0["name"] as? String == "blocks.0.attn.qkv.weight" })
        XCTAssertEqual(qkv["shape"] as? [Int], [96, 32])
        XCTAssertEqual((inspect["metadata"] as? [String: Any])?["mapping_table"] as? String, "vit.jax-npz")
        let v = try CLI.run(["verify", "--model", "vit_tiny_patch8_32", "--weights", out, "--mapping", "vit.timm",
                             "--reference", reference("vit_tiny_patch8_32")])
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)

        // --mapping none keeps the JAX names; --model then refuses, listing the problem.
        let none = try CLI.run(["convert", weights("vit_tiny_patch8_32.jax.npz"), "-o", dir + "/raw.safetensors", "--mapping", "none"])
        XCTAssertEqual(none.status, 0, none.stderr)
        XCTAssertNotNil(try json(try CLI.run(["inspect", dir + "/raw.safetensors", "--json"]).stdout)["tensors"])
        let bad = try CLI.run(["convert", weights("vit_tiny_patch8_32.jax.npz"), "-o", dir + "/bad.safetensors",
                               "--mapping", "none", "--model", "vit_tiny_patch8_32"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad.safetensors"))
    }

    func testModelsAndMappingsList() throws {
        let models = try CLI.run(["models", "--json"])
        XCTAssertEqual(models.status, 0)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(models.stdout.utf8)) as? [[String: Any]])
        let vit = try XCTUnwrap(list.first { $0["name"] as? String == "vit_base_patch16_224_in21k" })
        XCTAssertEqual(vit["parameters"] as? Int, 103_186_515)
        XCTAssertEqual(list.first { $0["name"] as? String == "resnet18" }?["parameters"] as? Int, 11_689_512)
        let mappings = try CLI.run(["mappings"])
        XCTAssertEqual(mappings.status, 0)
        for name in ["resnet.torchvision", "resnet_cbam.torchvision-merge", "resnet.h5-groups", "vit.timm", "vit.jax-npz", "vit.hf-transformers", "senet.seed"] {
            XCTAssertTrue(mappings.stdout.contains(name), name)
        }
    }

    /// `models --json` lists each model's options with defaults, its inputs and outputs.
    func testModelsListsOptionsInputsAndOutputs() throws {
        let r = try CLI.run(["models", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let tiny = try XCTUnwrap(list.first { $0["name"] as? String == "resnet18_tiny" })
        let options = try XCTUnwrap(tiny["options"] as? [[String: Any]])
        let numClasses = try XCTUnwrap(options.first { $0["key"] as? String == "num_classes" })
        XCTAssertEqual(numClasses["default"] as? Int, 10)
        XCTAssertEqual(numClasses["type"] as? String, "int")
        XCTAssertEqual(options.first { $0["key"] as? String == "widths" }?["default"] as? [Int], [4, 8, 16, 32])
        let input = try XCTUnwrap((tiny["inputs"] as? [[String: Any]])?.first)
        XCTAssertEqual(input["name"] as? String, "input")
        XCTAssertEqual(input["dtype"] as? String, "float32")
        XCTAssertEqual((input["shape"] as? [Any])?.count, 4)
        let output = try XCTUnwrap((tiny["outputs"] as? [[String: Any]])?.first)
        XCTAssertEqual(output["shape"] as? [AnyHashable], ["N", 10])
        // Every classifier takes num_classes (the seed-layout models of issue 9 name their options as their seeds
        // do: the annotated Transformer is no classifier, d2l_vit's head size is `classes`).
        for m in list where !["annotated_transformer", "d2l_vit"].contains(m["name"] as? String ?? "") { XCTAssertTrue(((m["options"] as? [[String: Any]]) ?? []).contains { $0["key"] as? String == "num_classes" }, "\(m["name"] ?? "?")") }
    }

    /// `--config KEY=VALUE` reshapes a named model: resnet18 with the tiny widths and 10 classes verifies against the
    /// tiny fixture; unknown or malformed options are one error line listing the valid ones.
    func testConfigOptionsOnVerifyConvertAndBench() throws {
        let base = ["verify", "--model", "resnet18", "--weights", weights("resnet18_tiny.zip.pth"), "--reference", reference("resnet18_tiny")]
        let ok = try CLI.run(base + ["--config", "widths=4,8,16,32", "--config", "num_classes=10"])
        XCTAssertEqual(ok.status, 0, ok.stderr + ok.stdout)
        XCTAssertTrue(ok.stdout.contains("PASS"))
        let cases: [([String], String)] = [
            (["--config", "num_clases=10"], "model resnet18 has no option 'num_clases' (did you mean 'num_classes'?); valid options: num_classes (int"),
            (["--config", "num_classes=ten"], "model resnet18: option num_classes=ten: expected int 1…1000000; valid options:"),
            (["--config", "widths"], "expected KEY=VALUE; valid options:"),
            (["--config", "cbam=maybe"], "option cbam=maybe: expected bool"),
        ]
        for (extra, fragment) in cases {
            let r = try CLI.run(base + extra)
            XCTAssertEqual(r.status, 1, "\(extra)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(fragment), "\(extra): \(r.stderr)")
        }
        let dir = NSTemporaryDirectory() + "weights-config-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let converted = try CLI.run(["convert", weights("resnet18_tiny.zip.pth"), "-o", dir + "/c.safetensors", "--model", "resnet18",
                                     "--config", "widths=4,8,16,32", "--config", "num_classes=10"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        let wrong = try CLI.run(["convert", weights("resnet18_tiny.zip.pth"), "-o", dir + "/w.safetensors", "--model", "resnet18",
                                 "--config", "widths=4,8,16,32"])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("do not load onto resnet18"), wrong.stderr)
        let bench = try CLI.run(["bench", "--model", "vit_tiny_patch8_32", "--config", "depth=1", "--runs", "1", "--json"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
    }

    /// The full-size names with `--config` reach the tiny fixtures: senet18 as the seed's example builds it
    /// (`Model(num_classes=10)`, here with the tiny widths), resnet50_cbam from the legacy backbone merged with the
    /// attention file. A wrong head size is a load error naming the key.
    func testSENetAndBottleneckThroughConfig() throws {
        let se = try CLI.run(["verify", "--model", "senet18", "--config", "num_classes=10", "--config", "widths=16,20,24,32",
                              "--weights", "\(Self.tests)/ModelsTests/Fixtures/senet18_tiny.weights.safetensors",
                              "--reference", reference("senet18_tiny")])
        XCTAssertEqual(se.status, 0, se.stderr + se.stdout)
        XCTAssertTrue(se.stdout.contains("conv3_1.selayer"), se.stdout)
        let cbam = try CLI.run(["verify", "--model", "resnet50_cbam", "--config", "widths=8,12,16,20", "--config", "num_classes=10",
                                "--weights", weights("resnet50_cbam_tiny.backbone.legacy.pth"),
                                "--weights", weights("resnet50_cbam_tiny.attention.safetensors"), "--policy", "merge",
                                "--reference", reference("resnet50_cbam_tiny")])
        XCTAssertEqual(cbam.status, 0, cbam.stderr + cbam.stdout)
        let head = try CLI.run(["verify", "--model", "senet18", "--config", "widths=16,20,24,32",
                                "--weights", "\(Self.tests)/ModelsTests/Fixtures/senet18_tiny.weights.safetensors",
                                "--reference", reference("senet18_tiny")])
        XCTAssertEqual(head.status, 1)
        XCTAssertTrue(head.stderr.contains("fc.weight"), head.stderr)
    }

    /// A tuple output through the CLI: STN's (transformed image, logits) are compared and reported one by one.
    func testVerifyReportsEveryOutputOfATuple() throws {
        let fixtures = "\(Self.tests)/ModelsTests/Fixtures"
        let args = ["verify", "--model", "stn_tiny", "--weights", "\(fixtures)/stn_tiny.weights.safetensors",
                    "--reference", "\(fixtures)/stn_tiny.reference.safetensors"]
        let r = try CLI.run(args + ["--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let outputs = try XCTUnwrap(try json(r.stdout)["outputs"] as? [[String: Any]])
        XCTAssertEqual(outputs.map { $0["name"] as? String }, ["output.0", "output.1"])
        XCTAssertTrue(outputs.allSatisfy { $0["passed"] as? Bool == true })
        XCTAssertEqual(outputs[1]["top1_agreement"] as? Double, 1)
        let text = try CLI.run(args)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("ok   output.0 [2, 3, 12, 16]"), text.stdout)
        XCTAssertTrue(text.stdout.contains("ok   output.1 [2, 10]"), text.stdout)
        // The same weights against a single-output model's reference: one error naming the file and the outputs.
        let wrong = try CLI.run(["verify", "--model", "stn_tiny", "--weights", "\(fixtures)/stn_tiny.weights.safetensors",
                                 "--reference", reference("resnet18_tiny")])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertEqual(wrong.stderr.split(separator: "\n").count, 1, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("resnet18_tiny.reference.safetensors"), wrong.stderr)
    }
}
