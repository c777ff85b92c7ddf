import Foundation
import XCTest
import TensorCore
@testable import Models

/// Issue 9's vit-pytorch family (lucidrains ViT in both layouts, SimpleViT, CRATE) against PyTorch running the seeds'
/// code (fixtures from Tools/make_lucidrains_fixtures.py; versions in Fixtures/lucidrains.VERSIONS.txt). Tolerance as
/// in `ParityTests`: |Δ| ≤ 1e-4·max|ref| + 1e-4·|ref| per element.
final class LucidrainsParityTests: XCTestCase {
    static let tiny = ["lucidrains_vit_tiny", "lucidrains_vit_prenorm_tiny", "simple_vit_tiny", "crate_tiny"]

    func checkParity(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (model, weights) = try ParityTests.loadTiny(name)
        let order = try XCTUnwrap(weights.metadata["state_dict_order"], file: file, line: line).split(separator: ",").map(String.init)
        XCTAssertEqual(model.parameterKeys, order, "\(name): keys in state_dict() order", file: file, line: line)
        for spec in model.parameterSpecs {
            XCTAssertEqual(spec.shape, try weights.tensor(spec.key).shape, "\(name) \(spec.key)", file: file, line: line)
        }

        let ref = try SafetensorsFixture(named: "\(name).reference")
        var captured: [String: FloatTensor] = [:]
        var capturedOrder: [String] = []
        let output = try model.forward(try ref.floats("input")) { path, value in captured[path] = value; capturedOrder.append(path) }
        XCTAssertEqual(capturedOrder, model.activationPaths, "\(name): reported paths", file: file, line: line)
        let refPaths = ref.keys.filter { $0 != "input" && $0 != "output" }
        XCTAssertEqual(Set(refPaths), Set(model.activationPaths), "\(name): PyTorch hooked the same modules", file: file, line: line)

        let c = ParityTests.compare(output, try ref.floats("output"))
        print("parity \(name) output \(output.shape): \(c)")
        XCTAssertEqual(output.shape, try ref.floats("output").shape, file: file, line: line)
        XCTAssertEqual(c.failures, 0, "\(name) output: \(c)", file: file, line: line)
        for key in refPaths {
            let r = try ref.floats(key)
            let got = try XCTUnwrap(captured[key], "\(name): \(key) not captured", file: file, line: line)
            XCTAssertEqual(got.shape, r.shape, "\(name) \(key)", file: file, line: line)
            let ci = ParityTests.compare(got, r)
            XCTAssertEqual(ci.failures, 0, "\(name) \(key): \(ci)", file: file, line: line)
        }
        // The comparison can fail: the same model with its seeded (unloaded) weights does not match.
        let unloaded = try ModelRegistry.make(name: name, seed: 7)
        XCTAssertGreaterThan(ParityTests.compare(try unloaded.forward(try ref.floats("input")), try ref.floats("output")).failures, 0,
                             file: file, line: line)
    }

    func testLucidrainsViTMatchesPyTorch() throws { try checkParity("lucidrains_vit_tiny") }
    func testLucidrainsViTPreNormMatchesPyTorch() throws { try checkParity("lucidrains_vit_prenorm_tiny") }
    func testSimpleViTMatchesPyTorch() throws { try checkParity("simple_vit_tiny") }
    func testCRATEMatchesPyTorch() throws { try checkParity("crate_tiny") }

    /// The layouts' keys as the issue lists them, at the default (seed 000) configurations, from a meta build.
    func testLayoutsRegisterTheIssueKeys() throws {
        func keys(_ name: String, _ config: [String] = []) throws -> Set<String> {
            let e = try ModelRegistry.entry(name)
            return Set(try e.describe(options: e.resolve(assignments: config)).parameterSpecs.map(\.key))
        }
        let current = try keys("lucidrains_vit")
        for k in ["to_patch_embedding.1.weight", "to_patch_embedding.2.weight", "to_patch_embedding.3.bias",
                  "transformer.layers.5.0.norm.weight", "transformer.layers.0.0.to_qkv.weight", "transformer.layers.0.0.to_out.0.bias",
                  "transformer.layers.0.1.net.0.weight", "transformer.layers.0.1.net.1.weight", "transformer.layers.0.1.net.4.bias",
                  "transformer.norm.weight", "mlp_head.weight", "cls_token", "pos_embedding"] {
            XCTAssertTrue(current.contains(k), k)
        }
        XCTAssertFalse(current.contains("transformer.layers.0.0.to_qkv.bias"), "to_qkv has no bias")
        let pre = try keys("lucidrains_vit_prenorm")
        for k in ["to_patch_embedding.1.weight", "transformer.layers.0.0.norm.weight", "transformer.layers.0.0.fn.to_qkv.weight",
                  "transformer.layers.0.0.fn.to_out.0.weight", "transformer.layers.0.1.norm.bias", "transformer.layers.0.1.fn.net.0.weight",
                  "transformer.layers.0.1.fn.net.3.weight", "mlp_head.0.weight", "mlp_head.1.bias"] {
            XCTAssertTrue(pre.contains(k), k)
        }
        XCTAssertFalse(pre.contains { $0.hasPrefix("transformer.norm") || $0 == "to_patch_embedding.2.weight" })
        let crate = try keys("crate")
        for k in ["transformer.layers.5.0.fn.qkv.weight", "transformer.layers.0.0.fn.to_out.0.weight", "transformer.layers.0.1.norm.weight",
                  "transformer.layers.0.1.fn.weight", "mlp_head.0.weight", "mlp_head.1.weight", "to_patch_embedding.3.weight"] {
            XCTAssertTrue(crate.contains(k), k)
        }
        let simple = try keys("simple_vit")
        XCTAssertTrue(simple.contains("linear_head.1.weight") && simple.contains("transformer.layers.0.0.to_out.weight"))
        XCTAssertFalse(simple.contains { $0.contains("pos") }, "SimpleViT's position embedding is computed, not stored")
    }

    /// Shapes at the defaults and at the issue's ViT-B/16-sized configuration; one head with dim_head == dim has no
    /// `to_out` (vit-pytorch's `project_out`).
    func testConfigurations() throws {
        let e = try ModelRegistry.entry("lucidrains_vit")
        let d = try e.describe()
        XCTAssertEqual(d.parameterSpecs.first { $0.key == "pos_embedding" }?.shape, [1, 65, 1024])
        XCTAssertEqual(d.parameterSpecs.first { $0.key == "transformer.layers.0.0.to_qkv.weight" }?.shape, [3072, 1024])
        let b16 = try e.describe(options: e.resolve(assignments: ["image_size=224", "patch_size=16", "dim=768", "depth=12",
                                                                  "heads=12", "mlp_dim=3072"]))
        XCTAssertEqual(b16.parameterSpecs.first { $0.key == "pos_embedding" }?.shape, [1, 197, 768])
        XCTAssertEqual(b16.parameterSpecs.first { $0.key == "to_patch_embedding.1.weight" }?.shape, [768])
        XCTAssertEqual(b16.inputs.first?.shapeDescription, "[N, 3, 224, 224]")
        let single = try e.describe(options: e.resolve(assignments: ["heads=1", "dim_head=1024"]))
        XCTAssertFalse(single.parameterSpecs.contains { $0.key.contains("to_out") })
        XCTAssertEqual(try ModelRegistry.entry("crate").describe().inputs.first?.shapeDescription, "[N, 3, 224, 224]")
        XCTAssertThrowsError(try ModelRegistry.make(name: "simple_vit", config: ["dim=30"]))
        XCTAssertThrowsError(try ModelRegistry.make(name: "lucidrains_vit", config: ["patch_size=30"]))
        XCTAssertThrowsError(try ModelRegistry.make(name: "lucidrains_vit", config: ["pool=max"]))
    }

    /// A meta build (shapes only) lists what a seeded build registers, including odd option combinations.
    func testMetaSpecsEqualBuiltModels() throws {
        let cases: [(String, [String])] = [
            ("lucidrains_vit_tiny", []), ("lucidrains_vit_prenorm_tiny", []), ("simple_vit_tiny", []), ("crate_tiny", []),
            ("lucidrains_vit_tiny", ["heads=1", "dim_head=32", "pool=mean", "channels=1", "depth=1"]),
            ("crate_tiny", ["heads=1", "dim_head=32", "pool=mean", "ista=0.5"]),
            ("simple_vit_tiny", ["image_size=48", "patch_size=16", "dim=12", "heads=3", "dim_head=5"]),
        ]
        for (name, config) in cases {
            let entry = try ModelRegistry.entry(name)
            let options = try entry.resolve(assignments: config)
            let built = try entry.make(options: options, seed: 1)
            let described = try entry.describe(options: options)
            XCTAssertEqual(built.parameterSpecs, described.parameterSpecs, "\(name) \(config)")
            XCTAssertEqual(built.activationPaths, described.activationPaths)
            let input = FloatTensor(shape: built.inputSpecs[0].exampleShape(batch: 2), repeating: 0.25)
            let y = try built.forward(input)
            XCTAssertEqual(y.shape, [2, built.outputSpecs[0].shape[1].example], "\(name) \(config)")
            XCTAssertTrue(y.data.allSatisfy(\.isFinite))
        }
    }

    /// The computed sin-cos table: seed 000's formula at a few hand-checked points.
    func testSinCosPositions() {
        let pe = SimpleViTConfig.sinCosPositions(h: 2, w: 3, dim: 8)
        XCTAssertEqual(pe.shape, [1, 6, 8])
        // token (y=1, x=2): ω = [1, 1e-4]; [sin 2x, …] = [sin 2, sin 2e-4, cos 2, cos 2e-4, sin 1, sin 1e-4, cos 1, cos 1e-4]
        let row = Array(pe.data[5 * 8..<6 * 8])
        let want: [Float] = [sinf(2), sinf(2e-4), cosf(2), cosf(2e-4), sinf(1), sinf(1e-4), cosf(1), cosf(1e-4)]
        for (a, b) in zip(row, want) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
