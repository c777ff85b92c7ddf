import Foundation
import Weights
import XCTest

/// The extended reference format: named inputs of several dtypes (`input.<name>`) and tuple outputs
/// (`output.0`, `output.1`), against PyTorch (fixture from Tools/make_multi_io_fixtures.py).
final class MultiIOTests: XCTestCase {
    static let fixtures = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Fixtures")
    static func fixture(_ name: String) -> String { "\(fixtures)/\(name)" }

    /// Swift twin of the script's `TwoHeads`: h = relu(proj(x + embed(ids))).masked_fill(~mask, 0);
    /// returns (fc(h), sigmoid(gate(h))).
    struct TwoHeads: Model {
        var embed: Embedding
        var proj: Linear
        var act = ReLU()
        var fc: Linear
        var gate: Linear

        init(seed: UInt64 = 0) {
            var rng = ParameterInit.seeded(seed)
            embed = Embedding(7, 4, rng: &rng)
            proj = Linear(4, 4, rng: &rng)
            fc = Linear(4, 3, rng: &rng)
            gate = Linear(4, 2, rng: &rng)
            bindModulePaths()
        }

        var name: String { "two_heads" }
        var mappingFamily: String { "two-heads" }
        var inputSpecs: [TensorSpec] {
            [TensorSpec("x", [.batch, .fixed(4)]), TensorSpec("ids", [.batch], dtype: .int64), TensorSpec("mask", [.batch, .fixed(4)], dtype: .bool)]
        }
        var outputSpecs: [TensorSpec] { [TensorSpec("logits", [.batch, .fixed(3)]), TensorSpec("gates", [.batch, .fixed(2)])] }

        mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.child("embed", &embed)
            v.child("proj", &proj)
            v.child("act", &act)
            v.child("fc", &fc)
            v.child("gate", &gate)
        }

        func checkInputValues(_ inputs: [InputTensor]) throws {
            if case .int64(_, let ids) = inputs[1] { try embed.check(ids, input: "ids", model: name) }
        }

        func forwardUnchecked(inputs: [InputTensor], capture: ActivationCapture?) -> [FloatTensor] {
            guard let x = inputs[0].floats, case .int64(let idShape, let ids) = inputs[1], case .bool(_, let mask) = inputs[2] else { return [] }
            var h = act(proj(Kernels.add(x, embed(ids, shape: idShape))), capture: capture)
            for i in h.data.indices where !mask[i] { h.data[i] = 0 }
            return [fc(h), Kernels.sigmoid(gate(h))]
        }
    }

    func testNamedInputsAndTupleOutputsMatchPyTorch() throws {
        var model = TwoHeads(seed: 3)
        let report = try model.load(Self.fixture("two_heads.weights.safetensors"))
        XCTAssertEqual(report.applied.count, 7)
        let ref = try ReferenceSet.load(Self.fixture("two_heads.reference.safetensors"))
        XCTAssertEqual(ref.outputs.map(\.name), ["output.0", "output.1"])
        XCTAssertEqual(Set(ref.inputs.keys), ["x", "ids", "mask"])
        let result = try Verifier.verify(model, reference: ref)
        XCTAssertEqual(result.outputs.map(\.name), ["output.0", "output.1"])
        XCTAssertTrue(result.passed, "\(result.outputs)")
        for c in result.outputs { XCTAssertLessThan(c.maxAbsError, 1e-5, c.name) }
        XCTAssertEqual(result.activations.map(\.name), ["act"])
        XCTAssertTrue(result.activations[0].passed)

        // An unloaded model differs on both outputs: the comparison can fail.
        let fresh = try Verifier.verify(TwoHeads(seed: 3), reference: ref)
        XCTAssertFalse(fresh.passed)
        XCTAssertTrue(fresh.outputs.allSatisfy { !$0.passed })
    }

    /// Malformed references and mismatched inputs: one error naming the file and key.
    func testReferenceFormatErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-multiio-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Checkpoint.open(Self.fixture("two_heads.reference.safetensors"))
        func write(_ name: String, _ edit: ([TensorEntry]) throws -> [TensorEntry]) throws -> String {
            let path = dir.appendingPathComponent(name).path
            let entries = try edit(good.tensors.map { TensorEntry(name: $0.name, tensor: try $0.load()) })
            let out = try AtomicOutput(destination: path)
            try SafetensorsWriter.write(StateDict(format: .safetensors, file: path, tensors: entries), to: out, dtype: nil, metadata: [:])
            try out.commit(durable: false)
            return path
        }
        func rename(_ from: String, _ to: String) -> ([TensorEntry]) throws -> [TensorEntry] {
            { es in try es.map { $0.name == from ? TensorEntry(name: to, tensor: try $0.load()) : $0 } }
        }
        var model = TwoHeads()
        try model.load(Self.fixture("two_heads.weights.safetensors"))
        let cases: [(String, ([TensorEntry]) throws -> [TensorEntry], String)] = [
            ("no-ids", { $0.filter { $0.name != "input.ids" } }, "needs input 'ids' (ids [N] int64) stored as 'input.ids'"),
            ("float-ids", { es in try es.map { $0.name == "input.ids" ? TensorEntry(name: "input.ids", tensor: try $0.load().converted(to: .float32)) : $0 } },
             "key 'input.ids': input is float32 [5]; model two_heads expects ids [N] int64"),
            ("gap", rename("output.1", "output.2"), "'output.1' is missing"),
            ("both", rename("output.1", "output"), "both 'output' and 'output.<…>'"),
            ("one-output", { $0.filter { $0.name != "output.1" } }, "has 2 output(s) (logits, gates) but the reference stores 1"),
            ("bad-id", { es in try es.map { $0.name == "input.ids" ? TensorEntry(name: "input.ids", tensor: Tensor(dtype: .int64, shape: [5],
                bytes: [0, 1, 2, 7, 0].flatMap { v in withUnsafeBytes(of: Int64(v).littleEndian) { Array($0) } })) : $0 } },
             "token id 7 at flat index 3 is outside the vocabulary 0..<7"),
        ]
        for (name, edit, fragment) in cases {
            let path = try write(name + ".safetensors", edit)
            XCTAssertThrowsError(try Verifier.verify(model, reference: try ReferenceSet.load(path)), name) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(name): '\(error)' lacks '\(fragment)'")
                XCTAssertTrue(error is VerificationError, "\(name): \(type(of: error))")
                XCTAssertTrue("\(error)".contains(name + ".safetensors"), "\(name): the file is named: \(error)")
            }
        }
    }
}
