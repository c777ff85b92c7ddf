import Foundation
import TensorCore

/// Whether a registered tensor is trained (`nn.Parameter`) or a buffer (`running_mean`, `num_batches_tracked`).
public enum ParameterKind: String, Sendable, Hashable {
    case parameter, buffer
}

/// One registered tensor: its upstream key, shape and dtype (float32, or int64 for `num_batches_tracked`).
public struct ParameterSpec: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var shape: [Int]
    public var dtype: DType
    public var kind: ParameterKind

    public init(key: String, shape: [Int], dtype: DType = .float32, kind: ParameterKind = .parameter) {
        self.key = key; self.shape = shape; self.dtype = dtype; self.kind = kind
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var description: String { "\(key) \(shape) \(dtype.rawValue)\(kind == .buffer ? " (buffer)" : "")" }
}

/// Walks a module tree in PyTorch `state_dict()` order: every registered tensor under its upstream key, and every
/// module (parameterless ones such as `ReLU` or `MaxPool2d` included) under its dotted path.
///
/// Modules call `tensor(_:_:kind:)`, `int64(_:_:)` and `child(_:_:)`; a visitor implements the two `visit`
/// requirements and keeps `scope` (the key components of the module being visited). Visitors receive `inout`
/// access, so the same walk reads (listing, `get`) and writes (`set`, binding module paths). `visitModule` is
/// called after a child module's own tensors and children (post-order, the order PyTorch's forward hooks fire in
/// for modules that run their children), with `scope` still naming that module.
public protocol ParameterVisitor {
    var scope: [String] { get set }
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind)
    /// An int64 scalar buffer (shape []), e.g. BatchNorm's `num_batches_tracked`.
    mutating func visit(key: String, int64: inout Int64)
    /// A child module, after its contents were visited. Default: nothing.
    mutating func visitModule<M: Module>(_ module: inout M)
}

/// A node of a model's module tree: a layer, a block, a container or the model itself. Its structure is written
/// once, in `visitParameters`; parameter specs, `get`/`set`, loading and activation paths all come from that walk.
public protocol Module {
    mutating func visitParameters(_ v: inout some ParameterVisitor)
    /// The module's dotted path in its model (`layer1.0`, `blocks.5`), set by `bindModulePaths()`.
    /// Modules that never report an output need not store it (the default is "").
    var modulePath: String { get set }
    /// Whether the forward pass reports this module's output to an `ActivationCapture` under `modulePath`
    /// (where PyTorch users would put a forward hook). Default: false.
    var reportsOutput: Bool { get }
}

/// The earlier name of `Module`.
public typealias ParameterContainer = Module

extension Module {
    public var modulePath: String {
        get { "" }
        set {}
    }
    public var reportsOutput: Bool { false }

    /// Hands `y` to `capture` under this module's path when this module reports its output; returns `y`.
    @inlinable @discardableResult
    public func report(_ y: FloatTensor, to capture: ActivationCapture?) -> FloatTensor {
        if let capture, reportsOutput { capture(modulePath, y) }
        return y
    }

    /// Stores each descendant's dotted path in it (models call this at the end of `init`, so `report` names
    /// what the tree walk names).
    public mutating func bindModulePaths() {
        var binder = PathBinder()
        visitParameters(&binder)
    }

    /// True when every module that reports its output stores the path the tree walk gives it.
    public var modulePathsAreBound: Bool {
        var copy = self
        var checker = PathChecker()
        copy.visitParameters(&checker)
        return checker.bound
    }

    /// Paths of the descendants that report their outputs, in the order a forward reports them (post-order).
    public var reportedPaths: [String] {
        var copy = self
        var lister = ReportedPathLister()
        copy.visitParameters(&lister)
        return lister.paths
    }

    /// Every descendant module's path, in post-order (as `visitModule` fires).
    public var modulePaths: [String] {
        var copy = self
        var lister = ReportedPathLister(all: true)
        copy.visitParameters(&lister)
        return lister.paths
    }
}

extension ParameterVisitor {
    public mutating func visitModule<M: Module>(_ module: inout M) {}

    /// Full key of `name` in the current scope (`layer1.0.bn1` + `weight`).
    public func key(_ name: String) -> String { scope.isEmpty ? name : scope.joined(separator: ".") + "." + name }

    /// The dotted path of the current scope.
    public var path: String { scope.joined(separator: ".") }

    public mutating func tensor(_ name: String, _ t: inout FloatTensor, kind: ParameterKind = .parameter) {
        visit(key: key(name), tensor: &t, kind: kind)
    }

    public mutating func int64(_ name: String, _ value: inout Int64) {
        visit(key: key(name), int64: &value)
    }

    /// Visits a sub-module under `name` (which may itself contain dots, e.g. `downsample.0`).
    public mutating func child<L: Module>(_ name: String, _ layer: inout L) {
        scope.append(name)
        layer.visitParameters(&self)
        visitModule(&layer)
        scope.removeLast()
    }

    /// Visits an optional sub-module; absent modules register nothing (PyTorch's `None`).
    public mutating func child<L: Module>(_ name: String, _ layer: inout L?) {
        guard var l = layer else { return }
        layer = nil  // keep the buffer uniquely referenced while it is visited
        child(name, &l)
        layer = l
    }

    /// Visits an array of modules under `name.0`, `name.1`, … (`name` itself is not a module here; use
    /// `Sequential` or `ModuleList` when it is one).
    public mutating func children<L: Module>(_ name: String, _ layers: inout [L]) {
        scope.append(name)
        for i in layers.indices { child(String(i), &layers[i]) }
        scope.removeLast()
    }
}

struct PathBinder: ParameterVisitor {
    var scope: [String] = []
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {}
    mutating func visit(key: String, int64: inout Int64) {}
    mutating func visitModule<M: Module>(_ module: inout M) {
        let p = path
        if module.modulePath != p { module.modulePath = p }
    }
}

struct PathChecker: ParameterVisitor {
    var scope: [String] = []
    var bound = true
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {}
    mutating func visit(key: String, int64: inout Int64) {}
    mutating func visitModule<M: Module>(_ module: inout M) {
        if bound && module.reportsOutput && module.modulePath != path { bound = false }
    }
}

struct ReportedPathLister: ParameterVisitor {
    var scope: [String] = []
    var all = false
    var paths: [String] = []
    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {}
    mutating func visit(key: String, int64: inout Int64) {}
    mutating func visitModule<M: Module>(_ module: inout M) {
        if all || module.reportsOutput { paths.append(path) }
    }
}

/// Errors of the model layer; each carries the key and what was expected vs found.
public enum ModelError: WeightsError, Equatable {
    case unknownModel(name: String, available: [String])
    case unknownParameter(key: String, model: String, suggestion: String?)
    case shapeMismatch(key: String, expected: [Int], found: [Int])
    case dtypeMismatch(key: String, expected: DType, found: DType)
    case invalidValue(key: String, reason: String)
    case invalidInput(model: String, expected: String, found: [Int])
    case invalidConfiguration(String)
    /// `--config KEY=…` with a key the model does not have; `valid` lists `key (type, default)` for each option.
    case unknownOption(model: String, key: String, valid: [String])
    /// `--config KEY=VALUE` whose value does not parse as the option's type (or is out of range).
    case invalidOption(model: String, key: String, value: String, expected: String, valid: [String])
    /// `--config TEXT` that is not `KEY=VALUE`.
    case malformedOption(model: String, text: String, valid: [String])

    public var description: String {
        switch self {
        case let .unknownModel(name, available):
            let hint = ModelError.nearest(name, in: available).map { " (did you mean '\($0)'?)" } ?? ""
            return "unknown model '\(name)'\(hint); available: \(available.joined(separator: ", "))"
        case let .unknownParameter(key, model, suggestion):
            return "model \(model) has no parameter '\(key)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
        case let .shapeMismatch(key, expected, found):
            return "parameter '\(key)': expected shape \(expected), found \(found)"
        case let .dtypeMismatch(key, expected, found):
            return "parameter '\(key)': expected dtype \(expected.rawValue), found \(found.rawValue)"
        case let .invalidValue(key, reason):
            return "parameter '\(key)': \(reason)"
        case let .invalidInput(model, expected, found):
            return "model \(model): expected input \(expected), found shape \(found)"
        case let .invalidConfiguration(reason):
            return "invalid model configuration: \(reason)"
        case let .unknownOption(model, key, valid):
            let keys = valid.map { String($0.prefix { $0 != " " }) }
            let hint = ModelError.nearest(key, in: keys).map { " (did you mean '\($0)'?)" } ?? ""
            return "model \(model) has no option '\(key)'\(hint); valid options: \(valid.joined(separator: ", "))"
        case let .malformedOption(model, text, valid):
            return "model \(model): option '\(text)': expected KEY=VALUE; valid options: \(valid.joined(separator: ", "))"
        case let .invalidOption(model, key, value, expected, valid):
            return "model \(model): option \(key)=\(value): expected \(expected); valid options: \(valid.joined(separator: ", "))"
        }
    }

    /// The candidate with the smallest edit distance, if it is reasonably close.
    static func nearest(_ s: String, in candidates: [String]) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = editDistance(Array(s.utf8), Array(c.utf8))
            if best == nil || d < best!.1 { best = (c, d) }
        }
        guard let (c, d) = best, d <= max(2, s.utf8.count / 4) else { return nil }
        return c
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        var prev = Array(0...b.count), cur = prev
        for i in 1...a.count {
            cur[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}

/// Deterministic SplitMix64 generator for seeded initialisation (same seed → same weights on every platform).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [−bound, bound).
    public mutating func uniform(_ bound: Float) -> Float {
        let u = Float(next() >> 40) * (1 / Float(1 << 24))  // [0, 1)
        return (2 * u - 1) * bound
    }

    /// Normal(0, std) truncated to ±2·std (as timm's `trunc_normal_` does), by Box–Muller with rejection.
    public mutating func truncatedNormal(std: Float) -> Float {
        while true {
            let u1 = max(Double(next() >> 11) * 0x1p-53, 1e-300), u2 = Double(next() >> 11) * 0x1p-53
            let z = (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
            if abs(z) <= 2 { return Float(z) * std }
        }
    }

    public mutating func uniformTensor(_ shape: [Int], bound: Float) -> FloatTensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        for i in 0..<n { data[i] = uniform(bound) }
        return FloatTensor(shape: shape, data: data)
    }

    public mutating func normalTensor(_ shape: [Int], std: Float) -> FloatTensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        for i in 0..<n { data[i] = truncatedNormal(std: std) }
        return FloatTensor(shape: shape, data: data)
    }
}
