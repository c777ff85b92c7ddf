import Foundation
import XCTest
import TensorCore
@testable import Models

/// Seed 000's STN and MobileViT (tiny configurations) against PyTorch running the seed's code
/// (Tools/seed_cnn_models.py via Tools/make_model_fixtures.py). Tolerance as `ParityTests`.
extension ParityTests {
    func testMobileViTTinyMatchesPyTorch() throws { try checkParity("mobilevit_tiny") }

    /// Two outputs (the transformed image, the logits) and the intermediates `local_net` and `conv`; the input is
    /// non-square, so the seed's H/W swap in `LocalNetwork` decides the transformed image's shape.
    func testSTNTinyMatchesPyTorch() throws {
        let (model, weights) = try Self.loadTiny("stn_tiny")
        let order = try XCTUnwrap(weights.metadata["state_dict_order"]).split(separator: ",").map(String.init)
        XCTAssertEqual(model.parameterKeys, order, "state_dict order")
        let ref = try SafetensorsFixture(named: "stn_tiny.reference")
        var captured: [String: FloatTensor] = [:]
        var capturedOrder: [String] = []
        let outputs = try model.forward(inputs: [.float32(try ref.floats("input"))]) { path, value in
            captured[path] = value; capturedOrder.append(path)
        }
        XCTAssertEqual(capturedOrder, model.activationPaths)
        XCTAssertEqual(model.outputSpecs.map(\.name), ["image", "logits"])
        XCTAssertEqual(outputs.count, 2)
        for (i, got) in outputs.enumerated() {
            let want = try ref.floats("output.\(i)")
            XCTAssertEqual(got.shape, want.shape, "output.\(i)")
            let c = Self.compare(got, want)
            print("parity stn_tiny output.\(i) \(got.shape): \(c)")
            XCTAssertEqual(c.failures, 0, "stn_tiny output.\(i): \(c)")
        }
        XCTAssertEqual(outputs[0].shape, [2, 3, 12, 16], "the seed samples a W × H grid from an H × W image")
        for key in ["local_net", "conv"] {
            let got = try XCTUnwrap(captured[key], "no activation at \(key)")
            let c = Self.compare(got, try ref.floats(key))
            XCTAssertEqual(c.failures, 0, "stn_tiny \(key): \(c)")
        }
    }

    /// Keys, shapes and options of the named configurations (the full-size layouts are checked against PyTorch in
    /// RegistrationTests via full_size_specs.json).
    func testSeedCNNConfigurations() throws {
        let xs = try ModelRegistry.entry("mobilevit_xs").describe()
        XCTAssertEqual(xs.inputs.map(\.shapeDescription), ["[N, 3, 256, 256]"])
        XCTAssertTrue(xs.parameterSpecs.contains { $0.key == "trunk.2.1.transformer.layers.2.1.fn.net.3.weight" && $0.shape == [144, 576] })
        XCTAssertTrue(xs.parameterSpecs.contains { $0.key == "stem.1.conv.3.weight" && $0.shape == [128, 1, 3, 3] })
        // xxs has expansion 2; a configuration with expansion 1 drops the 1×1 expansion (conv.0 is the depthwise).
        let e1 = try ModelRegistry.make(name: "mobilevit_tiny", config: ["expansion=1"])
        XCTAssertEqual(e1.parameterSpecs.first { $0.key == "stem.1.conv.0.weight" }?.shape, [8, 1, 3, 3])
        XCTAssertNil(e1.parameterSpecs.first { $0.key == "stem.1.conv.6.weight" })
        XCTAssertThrowsError(try ModelRegistry.make(name: "mobilevit_xs", config: ["img_size=96"]))
        XCTAssertThrowsError(try ModelRegistry.make(name: "mobilevit_xs", config: ["dims=1,2"]))
        let stn = try ModelRegistry.entry("stn").describe()
        XCTAssertEqual(stn.outputs.map(\.shapeDescription), ["[N, 3, 32, 32]", "[N, 10]"])
        XCTAssertEqual(stn.parameterSpecs.first { $0.key == "fc.0.weight" }?.shape, [1024, 1024])
        let wide = try ModelRegistry.entry("stn").describe(options: try ModelRegistry.entry("stn").resolve(assignments: ["h=24", "w=40"]))
        XCTAssertEqual(wide.outputs[0].shapeDescription, "[N, 3, 40, 24]")
        XCTAssertEqual(wide.parameterSpecs.first { $0.key == "fc.0.weight" }?.shape, [1024, 16 * 10 * 6])
    }
}
