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
                guard t.dtype.isFloatingPoint else { throw VerificationError.outputDType(file: path, key: t.name, found: t.dtype) }
                single = FloatTensor(try t.load())
            } else if t.name.hasPrefix("output."), let i = Int(t.name.dropFirst(7)), i >= 0, String(i) == t.name.dropFirst(7) {
                guard t.dtype.isFloatingPoint else { throw VerificationError.outputDType(file: path, key: t.name, found: t.dtype) }
                indexed.append((i, t.name, FloatTensor(try t.load())))
            } else if t.dtype.isFloatingPoint {
                acts[t.name] = FloatTensor(try t.load())
            }
        }
        guard !inputs.isEmpty else {
            throw VerificationError.noInputs(file: path, found: sd.names)
        }
        if inputs[""] != nil && inputs.count > 1 {
            throw VerificationError.mixedForms(file: path, key: "input", form: "input")
        }
        var outputs: [(name: String, tensor: FloatTensor)] = []
        if let single {
            guard indexed.isEmpty else {
                throw VerificationError.mixedForms(file: path, key: "output", form: "output")
            }
            outputs = [("output", single)]
        } else {
            indexed.sort { $0.0 < $1.0 }
            for (expected, entry) in indexed.enumerated() where entry.0 != expected {
                throw VerificationError.outputGap(file: path, key: entry.1, missing: "output.\(expected)")
            }
            outputs = indexed.map { ($0.1, $0.2) }
        }
        guard !outputs.isEmpty else { throw VerificationError.noOutputs(file: path) }
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
                throw VerificationError.missingInput(file: file, key: key, model: model.name, spec: "'\(spec.name)' (\(spec.description))", stored: have)
            }
            guard let value = InputTensor(t, as: spec.dtype) else {
                throw VerificationError.inputDType(file: file, key: key, model: model.name, spec: spec.description, found: t.dtype, shape: t.shape)
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
            throw VerificationError.outputCount(file: reference.file, model: model.name, expected: specs.map(\.name), stored: reference.outputs.map(\.name))
        }
        do {
            try model.checkInputValues(inputs)
        } catch let ModelError.invalidValue(key, reason) {
            let stored = model.inputSpecs.count == 1 && reference.inputs[""] != nil ? "input" : "input.\(key)"
            throw VerificationError.invalidInputValue(file: reference.file, key: stored, reason: reason)
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
                throw VerificationError.shapeMismatch(file: reference.file, key: ref.name, what: "output", model: got.shape, reference: ref.tensor.shape)
            }
            outs.append(Comparison.compare(name: ref.name, actual: got, reference: ref.tensor, tolerance: tolerance, classification: true))
        }
        var acts: [Comparison] = []
        for path in order {
            guard let ref = reference.activations[path], let got = captured[path] else { continue }
            guard ref.shape == got.shape else {
                throw VerificationError.shapeMismatch(file: reference.file, key: path, what: "activation", model: got.shape, reference: ref.shape)
            }
            acts.append(Comparison.compare(name: path, actual: got, reference: ref, tolerance: tolerance))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return VerificationReport(outputs: outs, activations: acts, firstDivergence: acts.first { !$0.passed }?.name,
                                  unmatched: wanted.subtracting(order).sorted(), seconds: seconds)
    }
}
