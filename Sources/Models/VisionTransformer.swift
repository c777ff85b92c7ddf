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

    // The seed's named configurations (vit_model.py): base/large/huge; the in21k ones have 21843 classes and a
    // pre-logits layer of the embedding width.
    public static let vitBasePatch16_224 = ViTConfig(name: "vit_base_patch16_224", patchSize: 16)
    public static let vitBasePatch32_224 = ViTConfig(name: "vit_base_patch32_224", patchSize: 32)
    public static let vitBasePatch16_224_in21k = ViTConfig(name: "vit_base_patch16_224_in21k", patchSize: 16,
                                                           numClasses: 21843, representationSize: 768)
    public static let vitBasePatch32_224_in21k = ViTConfig(name: "vit_base_patch32_224_in21k", patchSize: 32,
                                                           numClasses: 21843, representationSize: 768)
    public static let vitLargePatch16_224 = ViTConfig(name: "vit_large_patch16_224", patchSize: 16,
                                                      embedDim: 1024, depth: 24, numHeads: 16)
    public static let vitLargePatch16_224_in21k = ViTConfig(name: "vit_large_patch16_224_in21k", patchSize: 16, numClasses: 21843,
                                                            embedDim: 1024, depth: 24, numHeads: 16, representationSize: 1024)
    public static let vitLargePatch32_224_in21k = ViTConfig(name: "vit_large_patch32_224_in21k", patchSize: 32, numClasses: 21843,
                                                            embedDim: 1024, depth: 24, numHeads: 16, representationSize: 1024)
    public static let vitHugePatch14_224_in21k = ViTConfig(name: "vit_huge_patch14_224_in21k", patchSize: 14, numClasses: 21843,
                                                           embedDim: 1280, depth: 32, numHeads: 16, representationSize: 1280)

    public static let named: [ViTConfig] = [
        vitBasePatch16_224, vitBasePatch32_224, vitBasePatch16_224_in21k, vitBasePatch32_224_in21k,
        vitLargePatch16_224, vitLargePatch16_224_in21k, vitLargePatch32_224_in21k, vitHugePatch14_224_in21k,
    ]

    func validate() throws {
        guard imgSize >= 1, patchSize >= 1, imgSize % patchSize == 0, inChans >= 1, numClasses >= 0, depth >= 0,
              numHeads >= 1, embedDim % numHeads == 0, mlpHidden >= 1, representationSize.map({ $0 >= 1 }) ?? true else {
            throw ModelError.invalidConfiguration("\(name): img \(imgSize), patch \(patchSize), dim \(embedDim), heads \(numHeads)")
        }
    }

    /// Registered tensors in `state_dict()` order, without building the model.
    public var parameterSpecs: [ParameterSpec] {
        let d = embedDim
        var s = [ParameterSpec(key: "cls_token", shape: [1, 1, d]), ParameterSpec(key: "pos_embed", shape: [1, numPatches + 1, d]),
                 ParameterSpec(key: "patch_embed.proj.weight", shape: [d, inChans, patchSize, patchSize]),
                 ParameterSpec(key: "patch_embed.proj.bias", shape: [d])]
        func linear(_ k: String, _ o: Int, _ i: Int, bias: Bool = true) {
            s.append(ParameterSpec(key: k + ".weight", shape: [o, i]))
            if bias { s.append(ParameterSpec(key: k + ".bias", shape: [o])) }
        }
        func norm(_ k: String) { s += [ParameterSpec(key: k + ".weight", shape: [d]), ParameterSpec(key: k + ".bias", shape: [d])] }
        for i in 0..<depth {
            let p = "blocks.\(i)"
            norm(p + ".norm1"); linear(p + ".attn.qkv", 3 * d, d, bias: qkvBias); linear(p + ".attn.proj", d, d)
            norm(p + ".norm2"); linear(p + ".mlp.fc1", mlpHidden, d); linear(p + ".mlp.fc2", d, mlpHidden)
        }
        norm("norm")
        if let r = representationSize { linear("pre_logits.fc", r, d) }
        if numClasses > 0 { linear("head", numClasses, numFeatures) }
        return s
    }
}

/// `Attention`: fused `qkv` projection, multi-head softmax(QKᵀ/√d)V, output `proj`.
public struct Attention: ParameterContainer, Sendable {
    public var qkv: Linear
    public var proj: Linear
    public let numHeads: Int

    public init(dim: Int, numHeads: Int, qkvBias: Bool, rng: inout SeededGenerator) {
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
public struct Mlp: ParameterContainer, Sendable {
    public var fc1: Linear
    public var fc2: Linear

    public init(dim: Int, hidden: Int, rng: inout SeededGenerator) {
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
public struct TransformerBlock: ParameterContainer, Sendable {
    public var norm1: LayerNorm
    public var attn: Attention
    public var norm2: LayerNorm
    public var mlp: Mlp

    public init(_ c: ViTConfig, rng: inout SeededGenerator) {
        norm1 = LayerNorm(c.embedDim, eps: c.eps)
        attn = Attention(dim: c.embedDim, numHeads: c.numHeads, qkvBias: c.qkvBias, rng: &rng)
        norm2 = LayerNorm(c.embedDim, eps: c.eps)
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
}

/// The seed's `VisionTransformer` (no distillation token): patch_embed → [cls; patches] + pos_embed → blocks →
/// norm → cls token → pre_logits (fc + tanh, when configured) → head.
public struct VisionTransformer: Model {
    public let config: ViTConfig
    public var clsToken: FloatTensor
    public var posEmbed: FloatTensor
    /// `patch_embed.proj`: Conv2d(in_chans, embed_dim, kernel = stride = patch_size).
    public var patchEmbed: Conv2d
    public var blocks: [TransformerBlock]
    public var norm: LayerNorm
    /// `pre_logits.fc` (followed by tanh).
    public var preLogits: Linear?
    public var head: Linear?

    /// Builds the model with deterministic weights from `seed` (timm-like scales: tokens trunc-normal(0.02)).
    public init(_ config: ViTConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rng = SeededGenerator(seed: seed)
        let d = config.embedDim
        clsToken = rng.normalTensor([1, 1, d], std: 0.02)
        posEmbed = rng.normalTensor([1, config.numPatches + 1, d], std: 0.02)
        patchEmbed = Conv2d(config.inChans, d, kernel: config.patchSize, stride: config.patchSize, rng: &rng)
        blocks = (0..<config.depth).map { _ in TransformerBlock(config, rng: &rng) }
        norm = LayerNorm(d, eps: config.eps)
        preLogits = config.representationSize.map { Linear(d, $0, rng: &rng) }
        head = config.numClasses > 0 ? Linear(config.numFeatures, config.numClasses, rng: &rng) : nil
    }

    public var name: String { config.name }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("cls_token", &clsToken)
        v.tensor("pos_embed", &posEmbed)
        v.scope.append("patch_embed")
        v.child("proj", &patchEmbed)
        v.scope.removeLast()
        v.children("blocks", &blocks)
        v.child("norm", &norm)
        if preLogits != nil {
            v.scope.append("pre_logits")
            v.child("fc", &preLogits)
            v.scope.removeLast()
        }
        v.child("head", &head)
    }

    public var inputDescription: String { "[N, \(config.inChans), \(config.imgSize), \(config.imgSize)]" }

    public var activationPaths: [String] {
        ["patch_embed", "pos_drop"] + (0..<config.depth).map { "blocks.\($0)" } + ["blocks", "norm"]
            + (config.representationSize != nil ? ["pre_logits"] : []) + (config.numClasses > 0 ? ["head"] : [])
    }

    public func validateInput(_ shape: [Int]) throws {
        guard shape.count == 4, shape[0] >= 1, shape[1] == config.inChans, shape[2] == config.imgSize, shape[3] == config.imgSize else {
            throw ModelError.invalidInput(model: name, expected: inputDescription, found: shape)
        }
    }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let n = input.shape[0], d = config.embedDim
        // [N, C, H, W] → [N, P, D]: the stride-p convolution as a patch gather and one GEMM
        let patches = Kernels.patchEmbed(input, weight: patchEmbed.weight, bias: patchEmbed.bias, patch: config.patchSize)
        capture?("patch_embed", patches)
        let cls = FloatTensor(shape: [n, 1, d], data: Array([[Float]](repeating: clsToken.data, count: n).joined()))
        var x = Kernels.add(Kernels.concat([cls, patches], dim: 1), posEmbed)
        capture?("pos_drop", x)
        for (i, block) in blocks.enumerated() {
            x = block(x)
            capture?("blocks.\(i)", x)
        }
        capture?("blocks", x)
        x = norm(x)
        capture?("norm", x)
        var features = Kernels.selectToken(x, index: 0)
        if let preLogits {
            features = Kernels.tanh(preLogits(features))
            capture?("pre_logits", features)
        }
        guard let head else { return features }
        let logits = head(features)
        capture?("head", logits)
        return logits
    }
}
