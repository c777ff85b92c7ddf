import Foundation
import Weights
import XCTest

/// Checkpoint in every dialect → mapping table → Swift model → forward → compared with PyTorch's output.
/// Weights and references are written by real PyTorch (Tools/make_model_fixtures.py, Tools/make_dialect_fixtures.py).
final class EndToEndTests: XCTestCase {
    static let testsRoot = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent

    func fixture(_ name: String) -> String { "\(Self.testsRoot)/VerificationTests/Fixtures/\(name)" }
    func modelFixture(_ name: String) -> String { "\(Self.testsRoot)/ModelsTests/Fixtures/\(name)" }
    func reference(_ model: String) throws -> ReferenceSet { try ReferenceSet.load(modelFixture("\(model).reference.safetensors")) }

    /// Loads `files` onto a fresh `model` and checks the output against PyTorch's.
    @discardableResult
    func assertParity(_ model: String, _ files: [String], table: String, policy: LoadPolicy = .strict,
                      file: StaticString = #filePath, line: UInt = #line) throws -> LoadReport {
        try assertParity(model, files, tables: Array(repeating: table, count: files.count), policy: policy, file: file, line: line)
    }

    @discardableResult
    func assertParity(_ model: String, _ files: [String], tables: [String], policy: LoadPolicy = .strict,
                      file: StaticString = #filePath, line: UInt = #line) throws -> LoadReport {
        var m = try ModelRegistry.make(name: model)
        let report = try m.load(files, options: LoadOptions(policy: policy))
        XCTAssertEqual(report.files.map(\.table), tables, file: file, line: line)
        let result = try Verifier.verify(m, reference: try reference(model))
        let out = result.outputs[0]
        XCTAssertTrue(result.passed, "\(files): max|Δ| \(out.maxAbsError) vs max|ref| \(out.maxAbsReference), first divergence \(result.firstDivergence ?? "-")", file: file, line: line)
        XCTAssertEqual(out.top1Agreement, 1, file: file, line: line)
        XCTAssertGreaterThan(out.cosine, 0.999999, file: file, line: line)
        XCTAssertNil(result.firstDivergence, file: file, line: line)
        XCTAssertFalse(result.activations.isEmpty, "the reference's intermediates are compared too", file: file, line: line)
        return report
    }

    func testResNetInEveryDialect() throws {
        try assertParity("resnet18_tiny", [modelFixture("resnet18_tiny.weights.safetensors")], table: "resnet.torchvision")
        try assertParity("resnet18_tiny", [fixture("resnet18_tiny.zip.pth")], table: "resnet.torchvision")
        // Pre-1.0 torchvision files lack num_batches_tracked: the table declares it optional, so strict still passes.
        let legacy = try assertParity("resnet18_tiny", [fixture("resnet18_tiny.legacy.pth")], table: "resnet.torchvision")
        XCTAssertEqual(legacy.kept.count, 20)
        XCTAssertTrue(legacy.kept.allSatisfy { $0.hasSuffix("num_batches_tracked") })
        // A training checkpoint: weights under state_dict, with DataParallel's module. prefix; the rest is metadata.
        let ckpt = try assertParity("resnet18_tiny", [fixture("resnet18_tiny.checkpoint.pth")], table: "resnet.torchvision")
        XCTAssertEqual(ckpt.files[0].root, "state_dict")
        try assertParity("resnet18_tiny", [fixture("resnet18_tiny.groups.h5")], table: "resnet.h5-groups")
    }

    func testViTInEveryDialect() throws {
        try assertParity("vit_tiny_patch8_32", [fixture("vit_tiny_patch8_32.timm.pth")], table: "vit.timm")
        let jax = try assertParity("vit_tiny_patch8_32", [fixture("vit_tiny_patch8_32.jax.npz")], table: "vit.jax-npz")
        XCTAssertEqual(jax.applied.first { $0.key == "blocks.0.attn.qkv.weight" }?.sources.count, 3, "q, k and v fused into qkv")
        try assertParity("vit_tiny_patch8_32", [fixture("vit_tiny_patch8_32.hf.safetensors")], table: "vit.hf-transformers")
        try assertParity("vit_tiny_patch8_32", [fixture("vit_tiny_patch8_32.hf.bin")], table: "vit.hf-transformers")
    }

    /// The seed's CBAM story: torchvision weights merged onto CBAM-ResNet keep exactly the attention weights of the
    /// model; adding a second, partial file with those gives PyTorch's output.
    func testCBAMMergeStory() throws {
        let backbone = fixture("resnet18_cbam_tiny.backbone.pth")
        let fresh = try ModelRegistry.make(name: "resnet18_cbam_tiny")
        let attentionKeys = fresh.parameterKeys.filter { $0.contains(".ca.") || $0.contains(".sa.") }
        XCTAssertEqual(attentionKeys.count, 24, "8 blocks × (ca.fc.0, ca.fc.2, sa.conv1)")

        // strict refuses: the file lacks the attention weights, and says which.
        var strict = fresh
        XCTAssertThrowsError(try strict.load(backbone)) { error in
            let report = (error as? MappingError)?.report
            XCTAssertEqual(Set(report?.missing.map(\.key) ?? []), Set(attentionKeys))
        }

        // merge: sd = model.state_dict(); sd.update(pretrained)
        var merged = fresh
        let report = try merged.load([backbone], options: LoadOptions(policy: .merge))
        XCTAssertEqual(Set(report.kept), Set(attentionKeys))
        XCTAssertEqual(report.files[0].table, "resnet_cbam.torchvision-merge")
        for key in attentionKeys { XCTAssertEqual(try merged.get(key).bytes, try fresh.get(key).bytes, key) }
        let partialResult = try Verifier.verify(merged, reference: try reference("resnet18_cbam_tiny"))
        XCTAssertFalse(partialResult.passed, "with the model's own attention weights the output must differ from PyTorch's")

        // Adding the second file completes the model: now strict passes and the output is PyTorch's. The second
        // file's keys already are model keys, so it needs no table (identity).
        let full = try assertParity("resnet18_cbam_tiny", [backbone, fixture("resnet18_cbam_tiny.attention.safetensors")],
                                    tables: ["resnet_cbam.torchvision-merge", "identity"])
        XCTAssertTrue(full.kept.isEmpty)
        XCTAssertEqual(full.applied.count, fresh.parameterKeys.count)
    }

    /// The same story on the Bottleneck CBAM-ResNet-50, from a legacy-format backbone without num_batches_tracked
    /// (like torchvision's resnet50-19c8e357.pth): merge keeps the attention weights and the BN counters.
    func testBottleneckCBAMMergeStory() throws {
        let backbone = fixture("resnet50_cbam_tiny.backbone.legacy.pth")
        let fresh = try ModelRegistry.make(name: "resnet50_cbam_tiny")
        let attentionKeys = fresh.parameterKeys.filter { $0.contains(".ca.") || $0.contains(".sa.") }
        XCTAssertEqual(attentionKeys.count, 48, "16 Bottlenecks × (ca.fc.0, ca.fc.2, sa.conv1)")
        let counters = fresh.parameterKeys.filter { $0.hasSuffix("num_batches_tracked") }

        var merged = fresh
        let report = try merged.load([backbone], options: LoadOptions(policy: .merge))
        XCTAssertEqual(report.files[0].table, "resnet_cbam.torchvision-merge")
        XCTAssertEqual(Set(report.kept), Set(attentionKeys + counters))
        XCTAssertTrue(report.unused.isEmpty && report.mismatched.isEmpty)
        for key in attentionKeys { XCTAssertEqual(try merged.get(key).bytes, try fresh.get(key).bytes, key) }
        XCTAssertFalse(try Verifier.verify(merged, reference: try reference("resnet50_cbam_tiny")).passed)

        let full = try assertParity("resnet50_cbam_tiny", [backbone, fixture("resnet50_cbam_tiny.attention.safetensors")],
                                    tables: ["resnet_cbam.torchvision-merge", "identity"])
        XCTAssertEqual(Set(full.kept), Set(counters))
    }

    func testBottleneckResNetAndSENet() throws {
        try assertParity("resnet50_tiny", [modelFixture("resnet50_tiny.weights.safetensors")], table: "resnet.torchvision")
        try assertParity("senet18_tiny", [modelFixture("senet18_tiny.weights.safetensors")], table: "senet.seed")
        // A legacy file without num_batches_tracked: the table declares it optional, so strict passes.
        let legacy = try assertParity("senet18_tiny", [fixture("senet18_tiny.legacy.pth")], table: "senet.seed")
        XCTAssertEqual(legacy.kept.count, 20)
        XCTAssertTrue(legacy.kept.allSatisfy { $0.hasSuffix("num_batches_tracked") })
    }

    func testPartialPolicyForANewHead() throws {
        // Fine-tuning weights with a 5-class head onto the 10-class model: strict and merge refuse the head,
        // partial loads the rest, keeps the model's fc and lists it as mismatched.
        var sd = try Checkpoint.open(fixture("resnet18_tiny.zip.pth"))
        for (i, t) in sd.tensors.enumerated() where t.name.hasPrefix("fc.") {
            let shape = t.name == "fc.weight" ? [5, t.shape[1]] : [5]
            sd.tensors[i] = TensorEntry(name: t.name, tensor: Tensor(shape: shape, floats: [Float](repeating: 0.25, count: shape.reduce(1, *))))
        }
        let path = NSTemporaryDirectory() + "finetuned-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try AtomicOutput(destination: path)
        try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: [:])
        try out.commit()

        let fresh = try ModelRegistry.make(name: "resnet18_tiny")
        for policy in [LoadPolicy.strict, .merge] {
            var m = fresh
            XCTAssertThrowsError(try m.load([path], options: LoadOptions(policy: policy))) { error in
                XCTAssertEqual((error as? MappingError)?.report?.mismatched.map(\.key), ["fc.weight", "fc.bias"], "\(policy)")
            }
        }
        var m = fresh
        let report = try m.load([path], options: LoadOptions(policy: .partial))
        XCTAssertEqual(report.mismatched.map(\.key), ["fc.weight", "fc.bias"])
        XCTAssertEqual(report.mismatched.first?.found, [5, try fresh.get("fc.weight").shape[1]])
        XCTAssertEqual(Set(report.kept), ["fc.weight", "fc.bias"])
        XCTAssertEqual(try m.get("fc.weight").bytes, try fresh.get("fc.weight").bytes)
        XCTAssertEqual(try m.get("conv1.weight").bytes, try sd["conv1.weight"]!.load().bytes)
    }

    func testAFileOfAnotherFamilyIsRecognisedAsSuch() throws {
        var m = try ModelRegistry.make(name: "resnet18_tiny")
        XCTAssertThrowsError(try m.load(fixture("vit_tiny_patch8_32.timm.pth"))) { error in
            XCTAssertTrue("\(error)".contains("no mapping table recognises"), "\(error)")
            XCTAssertTrue("\(error)".contains("resnet18_tiny"), "\(error)")
        }
    }

    func testReferenceActivationsTheModelNeverReportsAreListed() throws {
        var model = try ModelRegistry.make(name: "resnet18_tiny")
        try model.load(fixture("resnet18_tiny.zip.pth"))
        var ref = try reference("resnet18_tiny")
        ref.activations["layer9"] = FloatTensor(shape: [1], data: [0])
        let result = try Verifier.verify(model, reference: ref)
        XCTAssertTrue(result.passed)
        XCTAssertEqual(result.unmatched, ["layer9"])
        XCTAssertFalse(result.activations.contains { $0.name == "layer9" })
    }
}
