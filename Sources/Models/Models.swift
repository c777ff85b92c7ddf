import TensorCore

/// Receives intermediate activations during a forward pass, keyed by model path (`layer1`, `blocks.5`, `norm`).
public typealias ActivationCapture = (_ path: String, _ value: FloatTensor) -> Void

/// A model with registered parameters and a float32 forward pass.
public protocol Model: ParameterContainer, Sendable {
    /// The upstream name this configuration mirrors (`resnet18`, `vit_base_patch16_224_in21k`).
    var name: String { get }
    /// Expected input shape, for messages: e.g. "[N, 3, 224, 224]".
    var inputDescription: String { get }
    /// Paths `forward` reports to a capture callback, in execution order.
    var activationPaths: [String] { get }
    /// Checks an input shape before `forward` runs.
    func validateInput(_ shape: [Int]) throws
    /// N×C×H×W → N×classes, reporting intermediates to `capture` when given.
    func forwardUnchecked(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor
}

extension Model {
    /// Runs the model on `x` after validating its shape.
    public func forward(_ x: FloatTensor, capture: ActivationCapture? = nil) throws -> FloatTensor {
        try validateInput(x.shape)
        return forwardUnchecked(x, capture: capture)
    }

    /// Every registered tensor in `state_dict()` order.
    public var parameterSpecs: [ParameterSpec] {
        var copy = self
        var lister = SpecLister()
        copy.visitParameters(&lister)
        return lister.specs
    }

    /// Upstream keys in `state_dict()` order.
    public var parameterKeys: [String] { parameterSpecs.map(\.key) }

    /// Number of trainable scalars (buffers excluded), as `sum(p.numel() for p in model.parameters())`.
    public var parameterCount: Int { parameterSpecs.filter { $0.kind == .parameter }.reduce(0) { $0 + $1.elementCount } }

    /// The tensor registered under `key` (float32, or int64 for `num_batches_tracked`).
    public func get(_ key: String) throws -> Tensor {
        var copy = self
        var getter = Getter(target: key)
        copy.visitParameters(&getter)
        guard let found = getter.found else { throw unknown(key) }
        return found
    }

    /// Replaces the tensor registered under `key`. Shapes must match exactly. Float parameters take any floating
    /// dtype (converted to float32, as `load_state_dict` copies into the parameter's dtype); `num_batches_tracked`
    /// takes an integer scalar of shape [].
    public mutating func set(_ key: String, _ value: Tensor) throws {
        var setter = Setter(target: key, value: value)
        visitParameters(&setter)
        if let error = setter.error { throw error }
        if !setter.done { throw unknown(key) }
    }

    /// All tensors in `state_dict()` order.
    public func stateDict() -> [(key: String, tensor: Tensor)] {
        var copy = self
        var c = Collector()
        copy.visitParameters(&c)
        return c.items
    }

    func unknown(_ key: String) -> ModelError {
        .unknownParameter(key: key, model: name, suggestion: ModelError.nearest(key, in: parameterKeys))
    }
}

struct SpecLister: ParameterVisitor {
    var scope: [String] = []
    var specs: [ParameterSpec] = []
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {
        specs.append(ParameterSpec(key: key, shape: tensor.shape, dtype: .float32, kind: kind))
    }
    mutating func visit(key: String, int64: inout Int64) {
        specs.append(ParameterSpec(key: key, shape: [], dtype: .int64, kind: .buffer))
    }
}

struct Getter: ParameterVisitor {
    var scope: [String] = []
    let target: String
    var found: Tensor?
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {
        if key == target { found = tensor.tensor }
    }
    mutating func visit(key: String, int64: inout Int64) {
        if key == target { found = Tensor(dtype: .int64, shape: [], bytes: withUnsafeBytes(of: int64.littleEndian) { Array($0) }) }
    }
}

struct Collector: ParameterVisitor {
    var scope: [String] = []
    var items: [(key: String, tensor: Tensor)] = []
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) { items.append((key, tensor.tensor)) }
    mutating func visit(key: String, int64: inout Int64) {
        items.append((key, Tensor(dtype: .int64, shape: [], bytes: withUnsafeBytes(of: int64.littleEndian) { Array($0) })))
    }
}

struct Setter: ParameterVisitor {
    var scope: [String] = []
    let target: String
    let value: Tensor
    var done = false
    var error: ModelError?

    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {
        guard key == target else { return }
        done = true
        guard value.shape == tensor.shape else {
            error = .shapeMismatch(key: key, expected: tensor.shape, found: value.shape); return
        }
        guard value.dtype.isFloatingPoint else {
            error = .dtypeMismatch(key: key, expected: .float32, found: value.dtype); return
        }
        tensor = FloatTensor(value)
    }

    mutating func visit(key: String, int64: inout Int64) {
        guard key == target else { return }
        done = true
        guard value.shape.isEmpty else {
            error = .shapeMismatch(key: key, expected: [], found: value.shape); return
        }
        guard !value.dtype.isFloatingPoint, value.dtype != .bool else {
            error = .dtypeMismatch(key: key, expected: .int64, found: value.dtype); return
        }
        let converted = value.converted(to: .int64)
        int64 = converted.bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }
}
