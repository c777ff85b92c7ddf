import TensorCore

/// Receives intermediate activations during a forward pass, keyed by module path (`layer1`, `blocks.5`, `norm`).
public typealias ActivationCapture = (_ path: String, _ value: FloatTensor) -> Void

/// One dimension of a declared input or output shape.
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    /// Exactly this size.
    case fixed(Int)
    /// Any size ≥ 1, named for messages (`N`, `H`, `T`); `example` is the size `bench` and docs use.
    case free(String, example: Int)

    public static let batch = Dim.free("N", example: 1)

    public var description: String {
        switch self {
        case .fixed(let n): return String(n)
        case .free(let name, _): return name
        }
    }

    public var example: Int {
        switch self {
        case .fixed(let n): return n
        case .free(_, let e): return e
        }
    }

    public func accepts(_ n: Int) -> Bool {
        switch self {
        case .fixed(let m): return n == m
        case .free: return n >= 1
        }
    }
}

/// A named input or output of a model: its shape (fixed and free dimensions) and dtype.
public struct TensorSpec: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var shape: [Dim]
    public var dtype: DType
    public var summary: String

    public init(_ name: String, _ shape: [Dim], dtype: DType = .float32, summary: String = "") {
        self.name = name; self.shape = shape; self.dtype = dtype; self.summary = summary
    }

    /// `[N, 3, 224, 224]`.
    public var shapeDescription: String { "[" + shape.map(\.description).joined(separator: ", ") + "]" }
    public var description: String { "\(name) \(shapeDescription) \(dtype.rawValue)" }
    /// A concrete shape with every free dimension at its example size (`batch` for `N`).
    public func exampleShape(batch: Int = 1) -> [Int] {
        shape.map { d in if case .free("N", _) = d { return batch } else { return d.example } }
    }

    public func accepts(_ shape: [Int]) -> Bool {
        shape.count == self.shape.count && zip(self.shape, shape).allSatisfy { $0.accepts($1) }
    }

    /// The usual image input: `input` [N, channels, height, width] float32, NCHW.
    public static func images(channels: Int, height: Int, width: Int) -> TensorSpec {
        TensorSpec("input", [.batch, .fixed(channels), .fixed(height), .fixed(width)], summary: "images, NCHW")
    }

    /// The usual classifier output: `logits` [N, classes].
    public static func logits(classes: Int) -> TensorSpec {
        TensorSpec("logits", [.batch, .fixed(classes)])
    }
}

/// An input value: float32 (images, features), int64 (token ids) or bool (masks).
public enum InputTensor: Sendable, Equatable {
    case float32(FloatTensor)
    case int64(shape: [Int], values: [Int64])
    case bool(shape: [Int], values: [Bool])

    public var shape: [Int] {
        switch self {
        case .float32(let t): return t.shape
        case .int64(let s, _), .bool(let s, _): return s
        }
    }

    public var dtype: DType {
        switch self {
        case .float32: return .float32
        case .int64: return .int64
        case .bool: return .bool
        }
    }

    /// A reader's tensor as an input of dtype `dtype`: floating tensors become float32; integer tensors int64;
    /// bool stays bool. Nil when the kinds differ (a float tensor offered for a token input).
    public init?(_ t: Tensor, as dtype: DType) {
        switch dtype {
        case .float32, .float64, .float16, .bfloat16:
            guard t.dtype.isFloatingPoint else { return nil }
            self = .float32(FloatTensor(t))
        case .bool:
            guard t.dtype == .bool else { return nil }
            self = .bool(shape: t.shape, values: t.bytes.map { $0 != 0 })
        default:
            guard t.dtype.isInteger else { return nil }
            let c = t.converted(to: .int64)
            let values = c.bytes.withUnsafeBytes { raw in
                (0..<t.elementCount).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
            self = .int64(shape: t.shape, values: values)
        }
    }

    /// The float32 tensor, or nil for int64 / bool inputs.
    public var floats: FloatTensor? {
        if case .float32(let t) = self { return t }
        return nil
    }
}

/// A model: a module tree with registered parameters, named inputs and outputs, a mapping family for its
/// checkpoints, and a forward pass. Registered families and models written in user code are treated alike:
/// loading and verifying read everything they need from these properties.
public protocol Model: Module, Sendable {
    /// The name this configuration goes by (`resnet18`, `vit_base_patch16_224_in21k`, or a user's own).
    var name: String { get }
    /// The mapping-table family whose keys this model registers (`resnet`, `vit`): picks tables when loading.
    var mappingFamily: String { get }
    /// Inputs in order. One input is stored as `input` in reference files; several as `input.<name>`.
    var inputSpecs: [TensorSpec] { get }
    /// Outputs in order. One output is `output` in reference files; several `output.0`, `output.1`, …
    var outputSpecs: [TensorSpec] { get }
    /// Runs on inputs already checked against `inputSpecs` (one per spec, same order), reporting the outputs of
    /// modules that report theirs to `capture`.
    func forwardUnchecked(inputs: [InputTensor], capture: ActivationCapture?) -> [FloatTensor]
    /// Checks input values beyond dtype and shape (token ids within the vocabulary), before the forward runs.
    /// Default: nothing to check.
    func checkInputValues(_ inputs: [InputTensor]) throws
}

/// A model with one float32 input and one output (image classifiers): implement the single-tensor forward.
public protocol SingleInputModel: Model {
    func forwardUnchecked(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor
}

extension SingleInputModel {
    public func forwardUnchecked(inputs: [InputTensor], capture: ActivationCapture?) -> [FloatTensor] {
        // `validate(inputs:)` guarantees one float32 input.
        guard let x = inputs.first?.floats else { preconditionFailure("\(name): forward without a validated float32 input") }
        return [forwardUnchecked(x, capture: capture)]
    }
}

extension Model {
    public func checkInputValues(_ inputs: [InputTensor]) throws {}

    /// Input description for messages: `[N, 3, 224, 224]`, or `src [N, S] int64, tgt [N, T] int64` for several.
    public var inputDescription: String {
        inputSpecs.count == 1 && inputSpecs[0].dtype == .float32
            ? inputSpecs[0].shapeDescription : inputSpecs.map(\.description).joined(separator: ", ")
    }

    /// Paths `forward` reports to a capture callback, in execution order: the modules that report their outputs.
    public var activationPaths: [String] { reportedPaths }

    /// Checks that `inputs` match `inputSpecs` in count, dtype and shape.
    public func validate(inputs: [InputTensor]) throws {
        guard inputs.count == inputSpecs.count else {
            throw ModelError.invalidInput(model: name, expected: inputDescription, found: inputs.first?.shape ?? [])
        }
        for (value, spec) in zip(inputs, inputSpecs) {
            guard value.dtype == spec.dtype, spec.accepts(value.shape) else {
                let expected = inputSpecs.count == 1 ? inputDescription : spec.description
                throw ModelError.invalidInput(model: name, expected: expected, found: value.shape)
            }
        }
    }

    /// Runs the model on named inputs after validating them; returns the outputs in `outputSpecs` order.
    public func forward(inputs: [InputTensor], capture: ActivationCapture? = nil) throws -> [FloatTensor] {
        try validate(inputs: inputs)
        try checkInputValues(inputs)
        if capture != nil && !modulePathsAreBound {
            // A model whose init did not call bindModulePaths(): report under the right paths from a bound copy.
            var bound = self
            bound.bindModulePaths()
            return bound.forwardUnchecked(inputs: inputs, capture: capture)
        }
        return forwardUnchecked(inputs: inputs, capture: capture)
    }

    /// Runs a model with one float32 input and one output on `x` after validating its shape.
    public func forward(_ x: FloatTensor, capture: ActivationCapture? = nil) throws -> FloatTensor {
        guard inputSpecs.count == 1, outputSpecs.count == 1 else {
            throw ModelError.invalidConfiguration("\(name) has \(inputSpecs.count) inputs and \(outputSpecs.count) outputs; use forward(inputs:)")
        }
        let out = try forward(inputs: [.float32(x)], capture: capture)
        guard let first = out.first else { throw ModelError.invalidConfiguration("\(name): forward returned no output") }
        return first
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
        guard value.dtype.isInteger else {
            error = .dtypeMismatch(key: key, expected: .int64, found: value.dtype); return
        }
        let converted = value.converted(to: .int64)
        int64 = converted.bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }
}
