// Reusable blocks shared by families: conv + batch norm + activation (PyTorch's `Sequential(Conv2d, BatchNorm2d, act)`).
import TensorCore

/// An activation applied after a layer: fused into the convolution's epilogue when it can be (ReLU, SiLU),
/// otherwise one vectorised pass.
public enum Activation: Sendable {
    case identity
    case relu
    case silu
    case gelu
    case tanh
    case sigmoid

    /// The convolution epilogue computing this activation, if there is one.
    public var epilogue: Epilogue? {
        switch self {
        case .identity: return Epilogue.none
        case .relu: return .relu
        case .silu: return .silu
        case .gelu, .tanh, .sigmoid: return nil
        }
    }

    private static func vector(_ f: Kernels.VectorFunction, _ x: FloatTensor) -> FloatTensor {
        var y = x
        Kernels.applyInPlace(f, &y)
        return y
    }

    public func apply(_ x: FloatTensor) -> FloatTensor {
        switch self {
        case .identity: return x
        case .relu: return Kernels.relu(x)
        case .silu: return Self.vector(.silu, x)
        case .gelu: return Self.vector(.gelu, x)
        case .tanh: return Self.vector(.tanh, x)
        case .sigmoid: return Self.vector(.sigmoid, x)
        }
    }
}

/// `nn.Sequential(Conv2d(…, bias=False), BatchNorm2d(out), act)`: registered as `0` (conv) and `1` (BN) under the
/// block's own key (`stem.0.conv.0.weight`); the parameterless activation registers nothing. Batch norm is folded
/// into the convolution at inference and ReLU / SiLU run in its epilogue.
public struct ConvBNAct: Layer {
    public var body: ConvBatchNorm
    public var activation: Activation
    public var modulePath = ""
    public var reportsOutput = false

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int? = nil, groups: Int = 1,
                activation: Activation, rng: inout ParameterInit) {
        body = ConvBatchNorm(inChannels, outChannels, kernel: kernel, stride: stride, padding: padding ?? kernel / 2, groups: groups,
                             convKey: "0", bnKey: "1", rng: &rng)
        self.activation = activation
    }

    public var conv: Conv2d { get { body.conv } set { body.conv = newValue } }
    public var bn: BatchNorm2d { get { body.bn } set { body.bn = newValue } }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        body.visitParameters(&v)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        if let e = activation.epilogue { return body(x, activation: e) }
        return activation.apply(body(x))
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

extension ConvBNAct: ReportingSwitch {}
