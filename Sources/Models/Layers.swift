import TensorCore

/// `nn.Conv2d`: `weight` [out, in/groups, kh, kw], optional `bias` [out].
public struct Conv2d: ParameterContainer, Sendable {
    public var weight: FloatTensor
    public var bias: FloatTensor?
    public var options: Conv2dOptions

    /// PyTorch's default initialisation scale: uniform(±1/√fan_in) for weight and bias.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias: Bool = true, rng: inout SeededGenerator) {
        let fanIn = inChannels / groups * kernel * kernel
        let bound = 1 / Float(fanIn).squareRoot()
        weight = rng.uniformTensor([outChannels, inChannels / groups, kernel, kernel], bound: bound)
        self.bias = bias ? rng.uniformTensor([outChannels], bound: bound) : nil
        options = Conv2dOptions(stride: stride, padding: padding, groups: groups)
    }

    public var outChannels: Int { weight.shape[0] }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        if bias != nil { v.tensor("bias", &bias!) }
    }

    public func callAsFunction(_ x: FloatTensor, activation: Epilogue = .none) -> FloatTensor {
        Kernels.conv2d(x, weight: weight, bias: bias, options: options, activation: activation)
    }
}

/// `nn.BatchNorm2d` in inference mode, with torchvision's buffers (`running_mean`, `running_var`,
/// `num_batches_tracked`). Initialised as PyTorch does: weight 1, bias 0, mean 0, var 1, count 0.
public struct BatchNorm2d: ParameterContainer, Sendable {
    public var weight: FloatTensor
    public var bias: FloatTensor
    public var runningMean: FloatTensor
    public var runningVar: FloatTensor
    public var numBatchesTracked: Int64 = 0
    public var eps: Float = 1e-5

    public init(_ channels: Int) {
        weight = FloatTensor(shape: [channels], repeating: 1)
        bias = FloatTensor(shape: [channels], repeating: 0)
        runningMean = FloatTensor(shape: [channels], repeating: 0)
        runningVar = FloatTensor(shape: [channels], repeating: 1)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        v.tensor("bias", &bias)
        v.tensor("running_mean", &runningMean, kind: .buffer)
        v.tensor("running_var", &runningVar, kind: .buffer)
        v.int64("num_batches_tracked", &numBatchesTracked)
    }

    public func callAsFunction(_ x: FloatTensor, activation: Epilogue = .none) -> FloatTensor {
        Kernels.batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                          eps: eps, activation: activation)
    }
}

/// A convolution followed by inference batch norm, registered as two sibling modules (`conv1` + `bn1`, or
/// `downsample.0` + `downsample.1`). The forward pass uses the convolution with the batch norm folded in,
/// computed once and recomputed only after either layer changes.
public struct ConvBatchNorm: ParameterContainer, Sendable {
    public var conv: Conv2d { didSet { folded = DerivedCache() } }
    public var bn: BatchNorm2d { didSet { folded = DerivedCache() } }
    public let convKey: String
    public let bnKey: String
    private var folded = DerivedCache<Conv2dPlan>()

    public init(conv: Conv2d, bn: BatchNorm2d, convKey: String, bnKey: String) {
        self.conv = conv; self.bn = bn; self.convKey = convKey; self.bnKey = bnKey
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child(convKey, &conv)
        v.child(bnKey, &bn)
    }

    /// act(bn(conv(x)) + residual).
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor? = nil, activation: Epilogue = .none) -> FloatTensor {
        let f = folded.get {
            let r = Kernels.foldBatchNorm(convWeight: conv.weight, convBias: conv.bias, bnWeight: bn.weight, bnBias: bn.bias,
                                          runningMean: bn.runningMean, runningVar: bn.runningVar, eps: bn.eps)
            return Conv2dPlan(weight: r.weight, bias: r.bias, options: conv.options)
        }
        return Kernels.conv2d(x, plan: f, residual: residual, activation: activation)
    }
}

/// `nn.Linear`: `weight` [out, in], optional `bias` [out].
public struct Linear: ParameterContainer, Sendable {
    public var weight: FloatTensor
    public var bias: FloatTensor?

    /// Uniform(±1/√in) initialisation, PyTorch's default scale.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout SeededGenerator) {
        let bound = 1 / Float(max(inFeatures, 1)).squareRoot()
        weight = rng.uniformTensor([outFeatures, inFeatures], bound: bound)
        self.bias = bias ? rng.uniformTensor([outFeatures], bound: bound) : nil
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        if bias != nil { v.tensor("bias", &bias!) }
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.linear(x, weight: weight, bias: bias)
    }
}

/// `nn.LayerNorm(dim, eps)` over the last dimension; weight 1, bias 0 initially.
public struct LayerNorm: ParameterContainer, Sendable {
    public var weight: FloatTensor
    public var bias: FloatTensor
    public var eps: Float

    public init(_ dim: Int, eps: Float) {
        weight = FloatTensor(shape: [dim], repeating: 1)
        bias = FloatTensor(shape: [dim], repeating: 0)
        self.eps = eps
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        v.tensor("bias", &bias)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
}
