// timm-style VisionTransformer of the seed (PatchEmbed conv, cls token, pre-norm blocks with fused qkv, pre_logits + tanh, head).
import TensorCore

/// Hyper-parameters of the seed's `VisionTransformer` (timm keys, LayerNorm eps 1e-6, GELU MLP).
public struct ViTConfig: Sendable, Equatable {
    public var name: String
    public var imgSize: Int
    public var patchSize: Int
    public var inChans: Int
    /// 0 means no head (`nn.Identity`): the model returns the (pre-logits) features.
    public var numClasses: Int
    public var embedDim: Int
    public var depth: Int
    public var numHeads: Int
    public var mlpRatio: Double
    public var qkvBias: Bool
    /// When set, `pre_logits.fc` (embed_dim → representation_size) + tanh precedes the head.
    public var representationSize: Int?
    public var eps: Float

    public init(name: String, imgSize: Int = 224, patchSize: Int = 16, inChans: Int = 3, numClasses: Int = 1000,
                embedDim: Int = 768, depth: Int = 12, numHeads: Int = 12, mlpRatio: Double = 4, qkvBias: Bool = true,
                representationSize: Int? = nil, eps: Float = 1e-6) {
        self.name = name; self.imgSize = imgSize; self.patchSize = patchSize; self.inChans = inChans
        self.numClasses = numClasses; self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads
        self.mlpRatio = mlpRatio; self.qkvBias = qkvBias; self.representationSize = representationSize; self.eps = eps
    }

    public var gridSize: Int { imgSize / patchSize }
    public var numPatches: Int { gridSize * gridSize }
    public var mlpHidden: Int { Int(Double(embedDim) * mlpRatio) }
    public var numFeatures: Int { representationSize ?? embedDim }

    func validate() throws {
        guard imgSize >= 1, patchSize >= 1, imgSize % patchSize == 0, inChans >= 1, numClasses >= 0, depth >= 0,
              numHeads >= 1, embedDim % numHeads == 0, mlpHidden >= 1, representationSize.map({ $0 >= 1 }) ?? true else {
            throw ModelError.invalidConfiguration("\(name): img \(imgSize), patch \(patchSize), dim \(embedDim), heads \(numHeads)")
        }
    }
}

/// `Attention`: fused `qkv` projection, multi-head softmax(QKᵀ/√d)V, output `proj`.
public struct Attention: Module, Sendable {
    public var qkv: Linear
    public var proj: Linear
    public let numHeads: Int

    public init(dim: Int, numHeads: Int, qkvBias: Bool, rng: inout ParameterInit) {
        qkv = Linear(dim, 3 * dim, bias: qkvBias, rng: &rng)
        proj = Linear(dim, dim, rng: &rng)
        self.numHeads = numHeads
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("qkv", &qkv)
        v.child("proj", &proj)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        proj(Kernels.multiHeadAttention(qkv: qkv(x), heads: numHeads))
    }

    /// residual + attn(x), the skip connection fused into `proj`.
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        proj(Kernels.multiHeadAttention(qkv: qkv(x), heads: numHeads), residual: residual)
    }
}

/// `Mlp`: fc1 → GELU (exact erf) → fc2.
public struct Mlp: Module, Sendable {
    public var fc1: Linear
    public var fc2: Linear

    public init(dim: Int, hidden: Int, rng: inout ParameterInit) {
        fc1 = Linear(dim, hidden, rng: &rng)
        fc2 = Linear(hidden, dim, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("fc1", &fc1)
        v.child("fc2", &fc2)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        fc2(fc1(x, activation: .gelu))
    }

    /// residual + mlp(x), the skip connection fused into `fc2`.
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        fc2(fc1(x, activation: .gelu), residual: residual)
    }
}

/// `Block`: x + attn(norm1(x)), then x + mlp(norm2(x)).
public struct TransformerBlock: Layer {
    public var norm1: LayerNorm
    public var attn: Attention
    public var norm2: LayerNorm
    public var mlp: Mlp
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(_ c: ViTConfig, rng: inout ParameterInit) {
        norm1 = LayerNorm(c.embedDim, eps: c.eps, rng: &rng)
        attn = Attention(dim: c.embedDim, numHeads: c.numHeads, qkvBias: c.qkvBias, rng: &rng)
        norm2 = LayerNorm(c.embedDim, eps: c.eps, rng: &rng)
        mlp = Mlp(dim: c.embedDim, hidden: c.mlpHidden, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm1", &norm1)
        v.child("attn", &attn)
        v.child("norm2", &norm2)
        v.child("mlp", &mlp)
    }

    public func callAsFunction(_ input: FloatTensor) -> FloatTensor {
        let x = attn(norm1(input), residual: input)
        return mlp(norm2(x), residual: x)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

/// timm's `PatchEmbed`: `proj` = Conv2d(in_chans, embed_dim, kernel = stride = patch), flattened to [N, P, D].
public struct PatchEmbed: Layer {
    public var proj: Conv2d
    public let patchSize: Int
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(inChans: Int, embedDim: Int, patchSize: Int, rng: inout ParameterInit) {
        proj = Conv2d(inChans, embedDim, kernel: patchSize, stride: patchSize, rng: &rng)
        self.patchSize = patchSize
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("proj", &proj)
    }

    /// [N, C, H, W] → [N, P, D]: the stride-p convolution as a patch gather and one GEMM.
    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(Kernels.patchEmbed(x, weight: proj.weight, bias: proj.bias, patch: patchSize), to: capture)
    }
}

/// timm's `pre_logits` = Sequential(OrderedDict(fc=Linear, act=Tanh)).
public struct PreLogits: Layer {
    public var fc: Linear
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(_ inFeatures: Int, _ outFeatures: Int, rng: inout ParameterInit) {
        fc = Linear(inFeatures, outFeatures, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("fc", &fc)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(Kernels.tanh(fc(x)), to: capture)
    }
}

/// The seed's `VisionTransformer` (no distillation token): patch_embed → [cls; patches] + pos_embed → pos_drop →
/// blocks → norm → cls token → pre_logits (fc + tanh, when configured) → head.
public struct VisionTransformer: SingleInputModel {
    public let config: ViTConfig
    public var clsToken: FloatTensor
    public var posEmbed: FloatTensor
    public var patchEmbed: PatchEmbed
    /// `pos_drop` (dropout: the identity at inference).
    public var posDrop = Dropout()
    public var blocks: Sequential<TransformerBlock>
    public var norm: LayerNorm
    public var preLogits: PreLogits?
    public var head: Linear?

    /// Builds the model with deterministic weights from `seed` (timm-like scales: tokens trunc-normal(0.02)).
    public init(_ config: ViTConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    /// Builds the model drawing its tensors from `rng` (seeded, or shapes only).
    public init(_ config: ViTConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        let d = config.embedDim
        clsToken = rng.truncatedNormal([1, 1, d], std: 0.02)
        posEmbed = rng.truncatedNormal([1, config.numPatches + 1, d], std: 0.02)
        patchEmbed = PatchEmbed(inChans: config.inChans, embedDim: d, patchSize: config.patchSize, rng: &rng)
        blocks = Sequential((0..<config.depth).map { _ in TransformerBlock(config, rng: &rng) })
        norm = LayerNorm(d, eps: config.eps, rng: &rng).reported()
        preLogits = config.representationSize.map { PreLogits(d, $0, rng: &rng) }
        head = config.numClasses > 0 ? Linear(config.numFeatures, config.numClasses, rng: &rng).reported() : nil
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "vit" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("cls_token", &clsToken)
        v.tensor("pos_embed", &posEmbed)
        v.child("patch_embed", &patchEmbed)
        v.child("pos_drop", &posDrop)
        v.child("blocks", &blocks)
        v.child("norm", &norm)
        v.child("pre_logits", &preLogits)
        v.child("head", &head)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: config.inChans, height: config.imgSize, width: config.imgSize)]
    }

    public var outputSpecs: [TensorSpec] {
        [TensorSpec(config.numClasses > 0 ? "logits" : "features", [.batch, .fixed(config.numClasses > 0 ? config.numClasses : config.numFeatures)])]
    }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let n = input.shape[0], d = config.embedDim
        let patches = patchEmbed(input, capture: capture)
        let cls = FloatTensor(shape: [n, 1, d], data: Array([[Float]](repeating: clsToken.data, count: n).joined()))
        var x = posDrop(Kernels.add(Kernels.concat([cls, patches], dim: 1), posEmbed), capture: capture)
        x = blocks(x, capture: capture)
        x = norm(x, capture: capture)
        var features = Kernels.selectToken(x, index: 0)
        if let preLogits { features = preLogits(features, capture: capture) }
        guard let head else { return features }
        return head(features, capture: capture)
    }
}
