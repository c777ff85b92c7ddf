import TensorCore

/// A module with a single-tensor forward that reports its output (when it is a capture point) through
/// `report(_:to:)`. `Sequential` chains these.
public protocol Layer: Module, Sendable {
    func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor
}

/// `nn.Conv2d`: `weight` [out, in/groups, kh, kw], optional `bias` [out].
public struct Conv2d: Layer {
    public var weight: FloatTensor
    public var bias: FloatTensor?
    public var options: Conv2dOptions
    public var modulePath = ""
    public var reportsOutput = false

    /// PyTorch's default initialisation scale: uniform(±1/√fan_in) for weight and bias.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias: Bool = true, rng: inout ParameterInit) {
        let fanIn = inChannels / max(groups, 1) * kernel * kernel
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        weight = rng.uniform([outChannels, inChannels / max(groups, 1), kernel, kernel], bound: bound)
        self.bias = bias ? rng.uniform([outChannels], bound: bound) : nil
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

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

/// `nn.BatchNorm2d` in inference mode, with torchvision's buffers (`running_mean`, `running_var`,
/// `num_batches_tracked`). Initialised as PyTorch does: weight 1, bias 0, mean 0, var 1, count 0.
public struct BatchNorm2d: Layer {
    public var weight: FloatTensor
    public var bias: FloatTensor
    public var runningMean: FloatTensor
    public var runningVar: FloatTensor
    public var numBatchesTracked: Int64 = 0
    public var eps: Float = 1e-5
    public var modulePath = ""
    public var reportsOutput = false

    public init(_ channels: Int, eps: Float = 1e-5, rng: inout ParameterInit) {
        weight = rng.constant([channels], 1)
        bias = rng.constant([channels], 0)
        runningMean = rng.constant([channels], 0)
        runningVar = rng.constant([channels], 1)
        self.eps = eps
    }

    public init(_ channels: Int) {
        var ini = ParameterInit.seeded(0)
        self.init(channels, rng: &ini)
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

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

/// A convolution followed by inference batch norm, registered as two sibling modules (`conv1` + `bn1`,
/// `downsample.0` + `downsample.1`, or `0` + `1` inside a `Sequential(conv, bn, act)`). The forward pass uses the
/// convolution with the batch norm folded in, computed once and recomputed only after either layer changes.
public struct ConvBatchNorm: Module, Sendable {
    public var conv: Conv2d { didSet { folded = DerivedCache() } }
    public var bn: BatchNorm2d { didSet { folded = DerivedCache() } }
    public let convKey: String
    public let bnKey: String
    private var folded = DerivedCache<Conv2dPlan>()

    public init(conv: Conv2d, bn: BatchNorm2d, convKey: String, bnKey: String) {
        self.conv = conv; self.bn = bn; self.convKey = convKey; self.bnKey = bnKey
    }

    /// conv(k×k, stride, padding, no bias) + BatchNorm2d(out), keyed `convKey` / `bnKey`.
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                convKey: String, bnKey: String, rng: inout ParameterInit) {
        self.init(conv: Conv2d(inChannels, outChannels, kernel: kernel, stride: stride, padding: padding, groups: groups,
                               bias: false, rng: &rng),
                  bn: BatchNorm2d(outChannels, rng: &rng), convKey: convKey, bnKey: bnKey)
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
public struct Linear: Layer {
    public var weight: FloatTensor { didSet { packed = DerivedCache() } }
    public var bias: FloatTensor?
    public var modulePath = ""
    public var reportsOutput = false
    /// The weight packed for the packed GEMM (AVX-512 or AVX2), built on the first forward on such a CPU (never elsewhere) and
    /// replaced whenever `weight` is set, so copies of the layer never see a stale one.
    private var packed = DerivedCache<PackedLinearWeight>()

    /// Uniform(±1/√in) initialisation, PyTorch's default scale.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout ParameterInit) {
        let bound = 1 / Float(max(inFeatures, 1)).squareRoot()
        weight = rng.uniform([outFeatures, inFeatures], bound: bound)
        self.bias = bias ? rng.uniform([outFeatures], bound: bound) : nil
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        if bias != nil { v.tensor("bias", &bias!) }
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.linear(x, weight: weight, bias: bias, packed: packed)
    }

    /// The packed-weight cache, for the fused-epilogue forwards (Linear+Epilogue.swift).
    var packedWeight: DerivedCache<PackedLinearWeight> { packed }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

/// `nn.LayerNorm(dim, eps)` over the last dimension; weight 1, bias 0 initially.
public struct LayerNorm: Layer {
    public var weight: FloatTensor
    public var bias: FloatTensor
    public var eps: Float
    public var modulePath = ""
    public var reportsOutput = false

    public init(_ dim: Int, eps: Float, rng: inout ParameterInit) {
        weight = rng.constant([dim], 1)
        bias = rng.constant([dim], 0)
        self.eps = eps
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        v.tensor("bias", &bias)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

extension Module {
    /// This module with `reportsOutput` on: its output is an activation path (`fc`, `norm`, `head`).
    public func reported() -> Self where Self: ReportingSwitch {
        var m = self
        m.reportsOutput = true
        return m
    }
}

/// Modules whose `reportsOutput` is chosen per instance (layers that are a capture point in one model and an
/// internal sub-layer in another, e.g. `fc` vs `attn.qkv`).
public protocol ReportingSwitch: Module {
    var reportsOutput: Bool { get set }
}

extension Conv2d: ReportingSwitch {}
extension BatchNorm2d: ReportingSwitch {}
extension Linear: ReportingSwitch {}
extension LayerNorm: ReportingSwitch {}

/// `nn.Embedding(num, dim)`: `weight` [num, dim]; looks up rows for int64 ids. Ids come from input files, so
/// models check them with `check(_:input:model:)` in `checkInputValues` before the forward runs.
public struct Embedding: Module, Sendable {
    public var weight: FloatTensor
    public var modulePath = ""

    /// N(0, 1) initialisation (truncated at ±2), PyTorch's scale.
    public init(_ count: Int, _ dim: Int, rng: inout ParameterInit) {
        weight = rng.truncatedNormal([count, dim], std: 1)
    }

    public var count: Int { weight.shape[0] }
    public var dim: Int { weight.shape[1] }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
    }

    /// Throws unless every id is in 0..<count.
    public func check(_ ids: [Int64], input: String, model: String) throws {
        if let (i, bad) = ids.enumerated().first(where: { $0.element < 0 || $0.element >= Int64(count) }) {
            throw ModelError.invalidValue(key: input, reason: "model \(model): token id \(bad) at flat index \(i) is outside the vocabulary 0..<\(count)")
        }
    }

    /// Rows for `ids` (shape `shape`): a tensor of shape `shape + [dim]`. Ids outside the table give zero rows
    /// (`check` rejects them before a forward pass).
    public func callAsFunction(_ ids: [Int64], shape: [Int]) -> FloatTensor {
        let d = dim, n = count
        return FloatTensor(shape: shape + [d]) { out in
            guard d > 0 else { return }
            for (r, id) in ids.enumerated() {
                let dst = out.baseAddress! + r * d
                if id >= 0 && id < Int64(n) {
                    weight.data.withUnsafeBufferPointer { w in dst.update(from: w.baseAddress! + Int(id) * d, count: d) }
                } else {
                    dst.update(repeating: 0, count: d)
                }
            }
        }
    }
}
