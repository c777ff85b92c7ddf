import Checkpoints
import Models
import TensorCore

/// Stored PyTorch inputs and outputs.
///
/// Format (any supported container: safetensors, HDF5, npz, PyTorch): one input is `input`, several are
/// `input.<name>` (float32, int64 or bool, named as the model's `inputSpecs`); one output is `output`, a tuple is
/// `output.0`, `output.1`, …; every other floating tensor is an intermediate activation named by module path
/// (`layer1`, `blocks.5`, `norm`).
public struct ReferenceSet: Sendable {
    public var file: String
    /// Inputs by stored name suffix: "" for a lone `input`, otherwise `<name>` of `input.<name>`.
    public var inputs: [String: Tensor]
    /// Outputs in order, under their stored names (`output`, or `output.0`, `output.1`, …).
    public var outputs: [(name: String, tensor: FloatTensor)]
    /// Intermediates by model path.
    public var activations: [String: FloatTensor]

    public init(file: String, inputs: [String: Tensor], outputs: [(name: String, tensor: FloatTensor)],
                activations: [String: FloatTensor] = [:]) {
        self.file = file
        self.inputs = inputs
        self.outputs = outputs
        self.activations = activations
    }

    /// A single-input, single-output reference (the original format).
    public init(file: String, input: FloatTensor, output: FloatTensor, activations: [String: FloatTensor] = [:]) {
        self.init(file: file, inputs: ["": input.tensor], outputs: [("output", output)], activations: activations)
    }

    /// The lone float input (`input`), if the reference has one.
    public var input: FloatTensor? { inputs[""].flatMap { $0.dtype.isFloatingPoint ? FloatTensor($0) : nil } }
    /// The first output.
    public var output: FloatTensor? { outputs.first?.tensor }

    /// Reads a reference file in any supported format.
    public static func load(_ path: String) throws -> ReferenceSet {
        let sd = try Checkpoint.open(path)
        var inputs: [String: Tensor] = [:]
        var indexed: [(Int, String, FloatTensor)] = []
        var single: FloatTensor?
        var acts: [String: FloatTensor] = [:]
        for t in sd.tensors {
            if t.name == "input" {
                inputs[""] = try t.load()
            } else if t.name.hasPrefix("input."), t.name.count > 6 {
                inputs[String(t.name.dropFirst(6))] = try t.load()
            } else if t.name == "output" {
                guard t.dtype.isFloatingPoint else { throw CheckpointError("reference output is \(t.dtype.rawValue); expected a floating tensor", file: path, key: t.name) }
                single = FloatTensor(try t.load())
            } else if t.name.hasPrefix("output."), let i = Int(t.name.dropFirst(7)), i >= 0, String(i) == t.name.dropFirst(7) {
                guard t.dtype.isFloatingPoint else { throw CheckpointError("reference output is \(t.dtype.rawValue); expected a floating tensor", file: path, key: t.name) }
                indexed.append((i, t.name, FloatTensor(try t.load())))
            } else if t.dtype.isFloatingPoint {
                acts[t.name] = FloatTensor(try t.load())
            }
        }
        guard !inputs.isEmpty else {
            throw CheckpointError("reference has no 'input' or 'input.<name>' tensor (it has: \(sd.names.prefix(8).joined(separator: ", ")))", file: path)
        }
        if inputs[""] != nil && inputs.count > 1 {
            throw CheckpointError("reference has both 'input' and 'input.<name>' tensors; use one form", file: path, key: "input")
        }
        var outputs: [(name: String, tensor: FloatTensor)] = []
        if let single {
            guard indexed.isEmpty else {
                throw CheckpointError("reference has both 'output' and 'output.<i>' tensors; use one form", file: path, key: "output")
            }
            outputs = [("output", single)]
        } else {
            indexed.sort { $0.0 < $1.0 }
            for (expected, entry) in indexed.enumerated() where entry.0 != expected {
                throw CheckpointError("reference outputs must be numbered output.0, output.1, … without gaps; 'output.\(expected)' is missing", file: path, key: entry.1)
            }
            outputs = indexed.map { ($0.1, $0.2) }
        }
        guard !outputs.isEmpty else { throw CheckpointError("reference has no 'output' or 'output.0' tensor", file: path) }
        return ReferenceSet(file: path, inputs: inputs, outputs: outputs, activations: acts)
    }

    /// The stored inputs in the order of `model.inputSpecs`, converted to each spec's dtype.
    public func inputs(for model: some Model) throws -> [InputTensor] {
        let specs = model.inputSpecs
        return try specs.map { spec in
            let stored = specs.count == 1 ? (inputs[""] ?? inputs[spec.name]) : inputs[spec.name]
            let key = specs.count == 1 && inputs[""] != nil ? "input" : "input.\(spec.name)"
            guard let t = stored else {
                let have = inputs.keys.sorted().map { $0.isEmpty ? "input" : "input.\($0)" }
                throw CheckpointError("model \(model.name) needs input '\(spec.name)' (\(spec.description)) stored as '\(key)'; the reference has \(have.joined(separator: ", "))", file: file, key: key)
            }
            guard let value = InputTensor(t, as: spec.dtype) else {
                throw CheckpointError("input '\(spec.name)' is \(t.dtype.rawValue) \(t.shape); model \(model.name) expects \(spec.description)", file: file, key: key)
            }
            return value
        }
    }
}

/// The outcome of running a model against a reference set.
public struct VerificationReport: Sendable {
    /// One comparison per model output, named as stored (`output`, `output.0`, …).
    public var outputs: [Comparison]
    /// Intermediates the reference holds, in the model's execution order.
    public var activations: [Comparison]
    /// The first intermediate (in execution order) that fails its tolerance, if any.
    public var firstDivergence: String?
    /// Reference tensors named like activations that the model never reported (a misspelt path, another model).
    public var unmatched: [String] = []
    public var seconds: Double

    public var passed: Bool { outputs.allSatisfy(\.passed) }
}

public enum Verifier {
    /// Runs `model` on the reference inputs and compares every output (and any stored intermediates).
    public static func verify(_ model: some Model, reference: ReferenceSet, tolerance: Tolerance = Tolerance()) throws -> VerificationReport {
        let inputs = try reference.inputs(for: model)
        let specs = model.outputSpecs
        guard reference.outputs.count == specs.count else {
            throw CheckpointError("model \(model.name) has \(specs.count) output(s) (\(specs.map(\.name).joined(separator: ", "))) but the reference stores \(reference.outputs.count) (\(reference.outputs.map(\.name).joined(separator: ", ")))", file: reference.file, key: reference.outputs.first?.name ?? "output")
        }
        var captured: [String: FloatTensor] = [:]
        var order: [String] = []
        let wanted = Set(reference.activations.keys)
        let clock = ContinuousClock()
        var outputs: [FloatTensor] = []
        let elapsed = try clock.measure {
            outputs = try model.forward(inputs: inputs) { path, value in
                if wanted.contains(path) && captured[path] == nil {
                    captured[path] = value
                    order.append(path)
                }
            }
        }
        var outs: [Comparison] = []
        for (got, ref) in zip(outputs, reference.outputs) {
            guard got.shape == ref.tensor.shape else {
                throw CheckpointError("model output '\(ref.name)' has shape \(got.shape) but the reference has \(ref.tensor.shape)", file: reference.file, key: ref.name)
            }
            outs.append(Comparison.compare(name: ref.name, actual: got, reference: ref.tensor, tolerance: tolerance, classification: true))
        }
        var acts: [Comparison] = []
        for path in order {
            guard let ref = reference.activations[path], let got = captured[path] else { continue }
            guard ref.shape == got.shape else {
                throw CheckpointError("activation '\(path)' has shape \(got.shape) but the reference has \(ref.shape)", file: reference.file, key: path)
            }
            acts.append(Comparison.compare(name: path, actual: got, reference: ref, tolerance: tolerance))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return VerificationReport(outputs: outs, activations: acts, firstDivergence: acts.first { !$0.passed }?.name,
                                  unmatched: wanted.subtracting(order).sorted(), seconds: seconds)
    }
}
