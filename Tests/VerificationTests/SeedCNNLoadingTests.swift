import Foundation
import Weights
import XCTest

/// Seed 000's MobileViT checkpoints in both layouts load onto the same model through the tables picked from their
/// keys: the seed's PreNorm layout (`mobilevit.seed`) and today's vit-pytorch layout (`mobilevit.vit-pytorch`,
/// written by vit_pytorch.mobile_vit.MobileViT from the same weights in Tools/make_model_fixtures.py).
final class SeedCNNLoadingTests: XCTestCase {
    static let testsRoot = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    func modelFixture(_ name: String) -> String { "\(Self.testsRoot)/ModelsTests/Fixtures/\(name)" }

    func checkMobileViT(_ file: String, table: String) throws {
        var model = try ModelRegistry.make(name: "mobilevit_tiny")
        let report = try model.load([modelFixture(file)], options: LoadOptions(policy: .strict))
        XCTAssertEqual(report.files.map(\.table), [table])
        XCTAssertEqual(report.applied.count, model.parameterKeys.count)
        let result = try Verifier.verify(model, reference: try ReferenceSet.load(modelFixture("mobilevit_tiny.reference.safetensors")))
        let out = result.outputs[0]
        XCTAssertTrue(result.passed, "\(file): max|Δ| \(out.maxAbsError) vs max|ref| \(out.maxAbsReference)")
        XCTAssertNil(result.firstDivergence)
        XCTAssertFalse(result.activations.isEmpty)
    }

    func testMobileViTSeedLayout() throws {
        try checkMobileViT("mobilevit_tiny.weights.safetensors", table: "mobilevit.seed")
    }

    func testMobileViTVitPytorchLayoutThroughTable() throws {
        try checkMobileViT("mobilevit_tiny.vit-pytorch.safetensors", table: "mobilevit.vit-pytorch")
    }

    /// Two outputs (`output.0` the transformed image, `output.1` the logits), each compared and reported.
    func testSTNSeedLayoutVerifiesBothOutputs() throws {
        var model = try ModelRegistry.make(name: "stn_tiny")
        let report = try model.load([modelFixture("stn_tiny.weights.safetensors")], options: LoadOptions(policy: .strict))
        XCTAssertEqual(report.files.map(\.table), ["stn.seed"])
        XCTAssertEqual(report.applied.count, model.parameterKeys.count)
        let result = try Verifier.verify(model, reference: try ReferenceSet.load(modelFixture("stn_tiny.reference.safetensors")))
        XCTAssertEqual(result.outputs.count, 2)
        XCTAssertTrue(result.passed, "\(result.outputs.map { "max|Δ| \($0.maxAbsError) vs \($0.maxAbsReference)" })")
        XCTAssertNil(result.firstDivergence)
        // A model that was not loaded fails (the comparison can fail).
        let unloaded = try ModelRegistry.make(name: "stn_tiny", seed: 7)
        XCTAssertFalse(try Verifier.verify(unloaded, reference: try ReferenceSet.load(modelFixture("stn_tiny.reference.safetensors"))).passed)
    }
}
