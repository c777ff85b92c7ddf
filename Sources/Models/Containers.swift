// PyTorch's containers (`nn.Sequential`, `nn.ModuleList`) and parameterless modules (`nn.ReLU`, `nn.MaxPool2d`,
// `nn.AdaptiveAvgPool2d`, `nn.Identity`, `nn.Dropout`, `nn.Tanh`, `nn.SiLU`): they register no tensors, but they are nodes of
// the module tree, so their paths (`relu`, `maxpool`, `layer1`, `pos_drop`) are activation paths.
import TensorCore

/// `nn.Sequential` of one layer type: children keyed `0`, `1`, …; the output of each child feeds the next, and the
/// container reports the last one under its own path.
public struct Sequential<Element: Layer>: Layer {
    public var layers: [Element]
    public var modulePath = ""
    public var reportsOutput: Bool

    public init(_ layers: [Element], reportsOutput: Bool = true) {
        self.layers = layers
        self.reportsOutput = reportsOutput
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        for i in layers.indices { v.child(String(i), &layers[i]) }
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var y = x
        for layer in layers { y = layer(y, capture: capture) }
        return report(y, to: capture)
    }

    public subscript(i: Int) -> Element {
        get { layers[i] }
        set { layers[i] = newValue }
    }
    public var count: Int { layers.count }
}

/// `nn.ModuleList`: children keyed `0`, `1`, …, run by the parent's forward (so the list reports nothing itself).
public struct ModuleList<Element: Module & Sendable>: Module, Sendable {
    public var modules: [Element]
    public init(_ modules: [Element]) { self.modules = modules }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        for i in modules.indices { v.child(String(i), &modules[i]) }
    }

    public subscript(i: Int) -> Element {
        get { modules[i] }
        set { modules[i] = newValue }
    }
    public var count: Int { modules.count }
}

/// A parameterless module that reports its output: `apply` is its whole forward.
public protocol StatelessLayer: Layer {
    func apply(_ x: FloatTensor) -> FloatTensor
}

extension StatelessLayer {
    public mutating func visitParameters(_ v: inout some ParameterVisitor) {}
    public var reportsOutput: Bool { true }
    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(apply(x), to: capture)
    }
}

/// `nn.ReLU`. When a preceding convolution already applied it in its epilogue, the forward calls `report` with
/// the fused result instead.
public struct ReLU: StatelessLayer {
    public var modulePath = ""
    public init() {}
    public func apply(_ x: FloatTensor) -> FloatTensor { Kernels.relu(x) }
}

/// `nn.SiLU`.
public struct SiLU: StatelessLayer {
    public var modulePath = ""
    public init() {}
    public func apply(_ x: FloatTensor) -> FloatTensor { Activation.silu.apply(x) }
}

/// `nn.Tanh`.
public struct Tanh: StatelessLayer {
    public var modulePath = ""
    public init() {}
    public func apply(_ x: FloatTensor) -> FloatTensor { Kernels.tanh(x) }
}

/// `nn.Identity`, and `nn.Dropout` at inference (both pass their input through).
public struct Identity: StatelessLayer {
    public var modulePath = ""
    public init() {}
    public func apply(_ x: FloatTensor) -> FloatTensor { x }
}

/// `nn.Dropout(p)` in eval mode: the identity.
public typealias Dropout = Identity

/// `nn.MaxPool2d(kernel, stride, padding)`.
public struct MaxPool2d: StatelessLayer {
    public var modulePath = ""
    public let kernel: Int, stride: Int, padding: Int
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernel = kernel; self.stride = stride ?? kernel; self.padding = padding
    }
    public func apply(_ x: FloatTensor) -> FloatTensor { Kernels.maxPool2d(x, kernel: kernel, stride: stride, padding: padding) }
}

/// `nn.AdaptiveAvgPool2d(output)`.
public struct AdaptiveAvgPool2d: StatelessLayer {
    public var modulePath = ""
    public let height: Int, width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    public func apply(_ x: FloatTensor) -> FloatTensor { Kernels.adaptiveAvgPool2d(x, outputSize: (height, width)) }
}
