import Foundation
import XCTest
import TensorCore
@testable import Models

/// Issue 9's seed families against PyTorch: tiny configurations written by Tools/make_seq_fixtures.py (versions in
/// Fixtures/SEQ_VERSIONS.txt). Same tolerance as `ParityTests`: |Δ| ≤ 1e-4·max|ref| + 1e-4·|ref| per element.
final class SeqParityTests: XCTestCase {
    static let transformerConfig = ["src_vocab=11", "tgt_vocab=13", "layers=2", "d_model=16", "d_ff=24", "heads=4"]

    /// Loads `fixture`.weights onto the model (every key but those in `skipping`), checks keys and order.
    func load(_ model: inout any Model, fixture: String, skipping: Set<String> = [],
              file: StaticString = #filePath, line: UInt = #line) throws {
        let weights = try SafetensorsFixture(named: "\(fixture).weights")
        let order = try XCTUnwrap(weights.metadata["state_dict_order"]).split(separator: ",").map(String.init)
        XCTAssertEqual(model.parameterKeys, order, "state_dict order", file: file, line: line)
        XCTAssertEqual(Set(weights.keys).union(skipping), Set(order), file: file, line: line)
        for key in weights.keys { try model.set(key, try weights.tensor(key)) }
    }

    /// Runs `inputs`, compares `output` and every intermediate of the reference; checks the reported order.
    func checkOutputs(_ model: any Model, inputs: [InputTensor], reference ref: SafetensorsFixture, skip: Set<String> = [],
                      file: StaticString = #filePath, line: UInt = #line) throws {
        var captured: [String: FloatTensor] = [:]
        var order: [String] = []
        let out = try model.forward(inputs: inputs) { p, v in captured[p] = v; order.append(p) }
        XCTAssertEqual(order, model.activationPaths, "reported paths", file: file, line: line)
        for key in ref.keys where !key.hasPrefix("input") && !skip.contains(key) {
            let want = try ref.floats(key)
            let got = key == "output" ? out[0] : try XCTUnwrap(captured[key], "\(model.name): \(key) not captured", file: file, line: line)
            XCTAssertEqual(got.shape, want.shape, "\(key) shape", file: file, line: line)
            let c = ParityTests.compare(got, want)
            print("parity \(model.name) \(key) \(want.shape): \(c)")
            XCTAssertEqual(c.failures, 0, "\(model.name) \(key): \(c)", file: file, line: line)
        }
    }

    func transformerInputs(_ ref: SafetensorsFixture) throws -> [InputTensor] {
        try ["src", "tgt", "src_mask", "tgt_mask"].map { n in
            let t = try ref.tensor("input.\(n)")
            return try XCTUnwrap(InputTensor(t, as: n.hasSuffix("mask") ? .bool : .int64))
        }
    }

    func testAnnotatedTransformerTinyMatchesPyTorch() throws {
        var model = try ModelRegistry.make(name: "annotated_transformer", config: Self.transformerConfig, seed: 3)
        try load(&model, fixture: "annotated_transformer_tiny", skipping: ["src_embed.1.pe", "tgt_embed.1.pe"])
        let ref = try SafetensorsFixture(named: "annotated_transformer_tiny.reference")
        // The sinusoid buffer the Swift model computes is PyTorch's (first 64 positions; the rest by the same formula).
        let prefix = try ref.floats("pe_prefix")
        for key in ["src_embed.1.pe", "tgt_embed.1.pe"] {
            let pe = FloatTensor(try model.get(key))
            XCTAssertEqual(pe.shape, [1, 5000, 16])
            let c = ParityTests.compare(FloatTensor(shape: prefix.shape, data: Array(pe.data.prefix(prefix.count))), prefix, rtol: 0)
            XCTAssertLessThanOrEqual(c.maxAbsError, 1e-6, "\(key): \(c)")
        }
        XCTAssertEqual(model.activationPaths, ["encoder.layers.0", "encoder.layers.1", "encoder", "decoder.layers.0",
                                               "decoder.layers.1", "decoder", "generator"])
        try checkOutputs(model, inputs: try transformerInputs(ref), reference: ref, skip: ["pe_prefix"])
    }

    /// The masks matter: flipping the padding mask changes the output (the −1e9 fill is applied).
    func testAnnotatedTransformerMaskChangesOutput() throws {
        var model = try ModelRegistry.make(name: "annotated_transformer", config: Self.transformerConfig, seed: 3)
        try load(&model, fixture: "annotated_transformer_tiny", skipping: ["src_embed.1.pe", "tgt_embed.1.pe"])
        let ref = try SafetensorsFixture(named: "annotated_transformer_tiny.reference")
        var inputs = try transformerInputs(ref)
        guard case .bool(let s, let v) = inputs[2] else { return XCTFail("src_mask") }
        inputs[2] = .bool(shape: s, values: [Bool](repeating: true, count: v.count))
        let c = ParityTests.compare(try model.forward(inputs: inputs)[0], try ref.floats("output"))
        XCTAssertGreaterThan(c.failures, 0)
    }

    /// Bad inputs: one clear error naming the input.
    func testAnnotatedTransformerRejectsBadInputs() throws {
        let model = try ModelRegistry.make(name: "annotated_transformer", config: Self.transformerConfig)
        let good: [InputTensor] = [.int64(shape: [1, 3], values: [1, 2, 3]), .int64(shape: [1, 2], values: [4, 5]),
                                   .bool(shape: [1, 1, 3], values: [true, true, false]), .bool(shape: [1, 2, 2], values: [true, false, true, true])]
        XCTAssertEqual(try model.forward(inputs: good)[0].shape, [1, 2, 16])
        let cases: [(Int, InputTensor, String)] = [
            (0, .int64(shape: [1, 3], values: [1, 11, 3]), "token id 11 at flat index 1 is outside the vocabulary 0..<11"),
            (1, .int64(shape: [1, 2], values: [-1, 5]), "token id -1"),
            (2, .bool(shape: [1, 1, 4], values: [true, true, true, true]), "src_mask"),
            (3, .bool(shape: [1, 3, 3], values: [Bool](repeating: true, count: 9)), "tgt_mask"),
            (1, .int64(shape: [2, 2], values: [1, 2, 3, 4]), "tgt"),
        ]
        for (i, value, fragment) in cases {
            var inputs = good
            inputs[i] = value
            XCTAssertThrowsError(try model.forward(inputs: inputs)) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(e)")
            }
        }
    }

    func testAnnotatedTransformerDefaultsAndKeys() throws {
        let e = try ModelRegistry.entry("annotated_transformer")
        let d = try e.describe(options: e.resolve(assignments: ["src_vocab=8000", "tgt_vocab=8000"]))
        XCTAssertEqual(d.inputs.map(\.name), ["src", "tgt", "src_mask", "tgt_mask"])
        XCTAssertEqual(d.inputs.map(\.dtype), [.int64, .int64, .bool, .bool])
        let specs = Dictionary(uniqueKeysWithValues: d.parameterSpecs.map { ($0.key, $0) })
        XCTAssertEqual(specs["src_embed.1.pe"]?.shape, [1, 5000, 512])
        XCTAssertEqual(specs["src_embed.1.pe"]?.kind, .buffer)
        XCTAssertEqual(specs["src_embed.0.lut.weight"]?.shape, [8000, 512])
        XCTAssertEqual(specs["generator.proj.weight"]?.shape, [8000, 512])
        XCTAssertEqual(specs["decoder.layers.5.src_attn.linears.3.bias"]?.shape, [512])
        XCTAssertEqual(specs["encoder.layers.5.sublayer.1.norm.a_2"]?.shape, [512])
        XCTAssertNil(specs["encoder.layers.6.sublayer.1.norm.a_2"])
        // make_model(8000, 8000): 6 encoder layers of 3.15M, 6 decoder layers of 4.2M, two 4.1M embeddings, generator.
        XCTAssertEqual(d.parameterCount, 56_436_544)  // sum(p.numel() for p in make_model(8000, 8000).parameters())
    }
}

extension SeqParityTests {
    func testD2LViTTinyMatchesPyTorch() throws {
        var model = try ModelRegistry.make(name: "d2l_vit", config: ["img_size=16", "patch_size=4", "blocks=2", "heads=4", "classes=10"], seed: 3)
        try load(&model, fixture: "d2l_vit_tiny")
        XCTAssertEqual(model.activationPaths, ["patch", "pos", "transformer.transformer.transformer0", "transformer.transformer.transformer1",
                                               "transformer", "mlphead"])
        let ref = try SafetensorsFixture(named: "d2l_vit_tiny.reference")
        try checkOutputs(model, inputs: [.float32(try ref.floats("input"))], reference: ref)
    }

    func testD2LViTDefaults() throws {
        let d = try ModelRegistry.entry("d2l_vit").describe()
        let specs = Dictionary(uniqueKeysWithValues: d.parameterSpecs.map { ($0.key, $0.shape) })
        XCTAssertEqual(specs["patch.conv.weight"], [768, 3, 16, 16])
        XCTAssertEqual(specs["pos.pos_emb"], [1, 197, 768])
        XCTAssertEqual(specs["transformer.transformer.transformer1.Attention.W_o.weight"], [768, 768])
        XCTAssertNil(specs["transformer.transformer.transformer1.Attention.W_o.bias"])
        XCTAssertEqual(specs["mlphead.weight"], [10, 768])
        XCTAssertThrowsError(try ModelRegistry.make(name: "d2l_vit", config: ["img_size=20"])) { e in
            XCTAssertTrue("\(e)".contains("multiple of patch_size"), "\(e)")
        }
    }
}

extension SeqParityTests {
    /// Three stages at 112×112: 16 windows, then 4, then one (vit-pytorch's early return) — both DSSA paths.
    func testSepViTTinyMatchesPyTorch() throws {
        var model = try ModelRegistry.make(name: "sepvit_lite", config: ["image_size=112", "num_classes=10", "dim=8", "dim_head=32",
                                                                         "heads=1,2,2", "depth=1,2,1"], seed: 3)
        try load(&model, fixture: "sepvit_tiny")
        let ref = try SafetensorsFixture(named: "sepvit_tiny.reference")
        try checkOutputs(model, inputs: [.float32(try ref.floats("input"))], reference: ref)
    }

    func testSepViTConfigurationErrors() throws {
        XCTAssertThrowsError(try ModelRegistry.make(name: "sepvit_lite", config: ["image_size=200"])) { e in
            XCTAssertTrue("\(e)".contains("multiple of window_size 7"), "\(e)")
        }
        XCTAssertThrowsError(try ModelRegistry.make(name: "sepvit_lite", config: ["heads=1,2"])) { e in
            XCTAssertTrue("\(e)".contains("need as many heads"), "\(e)")
        }
    }
}

extension SeqParityTests {
    /// `bench`'s inputs for the transformer: ids within each vocabulary, no padding, the seed's subsequent_mask.
    func testAnnotatedTransformerExampleInputs() throws {
        let model = try ModelRegistry.make(name: "annotated_transformer", config: Self.transformerConfig)
        let p = try XCTUnwrap(model as? any ExampleInputProvider)
        let x = p.exampleInputs(batch: 2, sizes: ["S": 5, "T": 3], seed: 1)
        XCTAssertEqual(x.map(\.shape), [[2, 5], [2, 3], [2, 1, 5], [2, 3, 3]])
        guard case .int64(_, let src) = x[0], case .int64(_, let tgt) = x[1], case .bool(_, let sm) = x[2], case .bool(_, let tm) = x[3] else {
            return XCTFail("dtypes")
        }
        XCTAssertTrue(src.allSatisfy { (0..<11).contains($0) } && tgt.allSatisfy { (0..<13).contains($0) })
        XCTAssertGreaterThan(Set(src).count, 1)
        XCTAssertTrue(sm.allSatisfy { $0 })
        XCTAssertEqual(tm, [true, false, false, true, true, false, true, true, true, true, false, false, true, true, false, true, true, true])
        XCTAssertEqual(try model.forward(inputs: x)[0].shape, [2, 3, 16])
    }
}
