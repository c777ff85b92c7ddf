import Checkpoints
import Models
import TensorCore

/// Stored PyTorch inputs and outputs: `input` (N×3×H×W float32), `output`, and optionally intermediate
/// activations named by model path (`layer1`, `blocks.5`, `norm`).
public struct ReferenceSet: Sendable {
    public var file: String
    public var input: FloatTensor
    public var output: FloatTensor
    /// Intermediates by model path.
    public var activations: [String: FloatTensor]

    public init(file: String, input: FloatTensor, output: FloatTensor, activations: [String: FloatTensor] = [:]) {
        self.file = file
        self.input = input
        self.output = output
        self.activations = activations
    }

    /// Reads a reference file in any supported format (safetensors, HDF5, npz, PyTorch).
    public static func load(_ path: String) throws -> ReferenceSet {
        let sd = try Checkpoint.open(path)
        guard let input = sd["input"] else { throw CheckpointError("reference has no 'input' tensor (it has: \(sd.names.prefix(8).joined(separator: ", ")))", file: path) }
        guard let output = sd["output"] else { throw CheckpointError("reference has no 'output' tensor", file: path) }
        var acts: [String: FloatTensor] = [:]
        for t in sd.tensors where t.name != "input" && t.name != "output" && t.dtype.isFloatingPoint {
            acts[t.name] = FloatTensor(try t.load())
        }
        return ReferenceSet(file: path, input: FloatTensor(try input.load()), output: FloatTensor(try output.load()), activations: acts)
    }
}

/// The outcome of running a model against a reference set.
public struct VerificationReport: Sendable {
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
    /// Runs `model` on the reference input and compares its output (and any stored intermediates).
    public static func verify(_ model: some Model, reference: ReferenceSet, tolerance: Tolerance = Tolerance()) throws -> VerificationReport {
        var captured: [String: FloatTensor] = [:]
        var order: [String] = []
        let wanted = Set(reference.activations.keys)
        let clock = ContinuousClock()
        var output = FloatTensor(shape: [0], data: [])
        let elapsed = try clock.measure {
            output = try model.forward(reference.input) { path, value in
                if wanted.contains(path) && captured[path] == nil {
                    captured[path] = value
                    order.append(path)
                }
            }
        }
        guard output.shape == reference.output.shape else {
            throw CheckpointError("model output has shape \(output.shape) but the reference output has \(reference.output.shape)", file: reference.file, key: "output")
        }
        let out = Comparison.compare(name: "output", actual: output, reference: reference.output, tolerance: tolerance, classification: true)
        var acts: [Comparison] = []
        for path in order {
            guard let ref = reference.activations[path], let got = captured[path] else { continue }
            guard ref.shape == got.shape else {
                throw CheckpointError("activation '\(path)' has shape \(got.shape) but the reference has \(ref.shape)", file: reference.file, key: path)
            }
            acts.append(Comparison.compare(name: path, actual: got, reference: ref, tolerance: tolerance))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return VerificationReport(outputs: [out], activations: acts, firstDivergence: acts.first { !$0.passed }?.name,
                                  unmatched: wanted.subtracting(order).sorted(), seconds: seconds)
    }
}
