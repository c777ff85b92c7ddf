// CRATE (Ma-Lab-Berkeley/CRATE `model/crate.py`; its ISTA block is seed 004's): vit-pytorch's normed patch
// embedding and tokens, then per layer z + MSSA(norm(z)) with one projection used as q = k = v, followed by one ISTA
// sparse-coding step on norm(·) (no skip connection), then cls token or token mean → LayerNorm + Linear head.
import TensorCore

/// `PreNorm(dim, FeedForward(dim, dim, step_size=ista))`: relu(z + (η·(z·D − (z·Dᵀ)·D) − η·λ)) with z = norm(x),
/// D = `fn.weight` [dim, dim], η the step size (`ista`, 0.1) and λ = 0.1.
public struct ISTABlock: TokenBlock {
    public var norm: LayerNorm
    public var weight: FloatTensor
    public let stepSize: Float
    public let lambda: Float

    public init(dim: Int, stepSize: Float, lambda: Float = 0.1, rng: inout ParameterInit) {
        norm = LayerNorm(dim, eps: 1e-5, rng: &rng)
        // kaiming_uniform_ with its defaults (a = 0, fan_in): bound √(6 / dim).
        weight = rng.uniform([dim, dim], bound: (6 / Float(max(dim, 1))).squareRoot())
        self.stepSize = stepSize
        self.lambda = lambda
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm", &norm)
        v.tensor("fn.weight", &weight)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.istaStep(norm(x), dictionary: weight, stepSize: stepSize, lambda: lambda)
    }
}

/// Hyper-parameters of CRATE (`CRATE(image_size, patch_size, num_classes, dim, depth, heads, pool, channels,
/// dim_head, ista)`).
public struct CRATEConfig: Sendable, Equatable {
    public var name: String
    public var imageSize: Int
    public var patchSize: Int
    public var numClasses: Int
    public var dim: Int
    public var depth: Int
    public var heads: Int
    public var dimHead: Int
    public var pool: LucidrainsViTConfig.Pool
    public var channels: Int
    /// The ISTA step size η (`ista`).
    public var ista: Float

    public init(name: String, imageSize: Int = 224, patchSize: Int = 32, numClasses: Int = 1000, dim: Int = 1024,
                depth: Int = 6, heads: Int = 16, dimHead: Int = 64, pool: LucidrainsViTConfig.Pool = .cls,
                channels: Int = 3, ista: Float = 0.1) {
        self.name = name; self.imageSize = imageSize; self.patchSize = patchSize; self.numClasses = numClasses
        self.dim = dim; self.depth = depth; self.heads = heads; self.dimHead = dimHead; self.pool = pool
        self.channels = channels; self.ista = ista
    }

    public var numPatches: Int { (imageSize / patchSize) * (imageSize / patchSize) }

    func validate() throws {
        guard imageSize >= 1, patchSize >= 1, imageSize % patchSize == 0, numClasses >= 1, dim >= 1, depth >= 0,
              heads >= 1, dimHead >= 1, channels >= 1, ista.isFinite else {
            throw ModelError.invalidConfiguration(
                "\(name): image_size \(imageSize) must be a multiple of patch_size \(patchSize); dim \(dim), heads \(heads), "
                + "dim_head \(dimHead), channels \(channels) and num_classes \(numClasses) must be ≥ 1")
        }
    }
}

/// CRATE: to_patch_embedding → [cls; patches] + pos_embedding → layers of (z + MSSA(norm z), then ISTA) → pool →
/// mlp_head (LayerNorm + Linear).
public struct CRATE: SingleInputModel {
    public typealias Block = LucidLayer<LucidAttentionBlock, ISTABlock>
    public let config: CRATEConfig
    public var posEmbedding: FloatTensor
    public var clsToken: FloatTensor
    public var toPatchEmbedding: LucidPatchEmbedding
    public var dropout = Dropout()
    public var transformer: LucidTransformer<Block>
    public var mlpHead: NormLinearHead

    public init(_ config: CRATEConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    public init(_ config: CRATEConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        let d = config.dim
        posEmbedding = rng.truncatedNormal([1, config.numPatches + 1, d], std: 1)
        clsToken = rng.truncatedNormal([1, 1, d], std: 1)
        toPatchEmbedding = LucidPatchEmbedding(channels: config.channels, patchSize: config.patchSize, dim: d, normed: true, rng: &rng)
        var layers: [Block] = []
        for _ in 0..<config.depth {
            let norm = LayerNorm(d, eps: 1e-5, rng: &rng)
            let attention = LucidAttention(dim: d, heads: config.heads, dimHead: config.dimHead, projection: .shared, rng: &rng)
            layers.append(Block(attn: LucidAttentionBlock(norm: norm, attention: attention, wrapped: true),
                                ff: ISTABlock(dim: d, stepSize: config.ista, rng: &rng)))
        }
        transformer = LucidTransformer(norm: nil, layers: layers)
        mlpHead = NormLinearHead(dim: d, classes: config.numClasses, rng: &rng)
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "crate" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("pos_embedding", &posEmbedding)
        v.tensor("cls_token", &clsToken)
        v.child("to_patch_embedding", &toPatchEmbedding)
        v.child("dropout", &dropout)
        v.child("transformer", &transformer)
        v.child("mlp_head", &mlpHead)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: config.channels, height: config.imageSize, width: config.imageSize)]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: config.numClasses)] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let patches = toPatchEmbedding(input, capture: capture)
        var x = dropout(LucidTokens.prepend(clsToken, to: patches, adding: posEmbedding), capture: capture)
        x = transformer(x, capture: capture)
        let pooled = config.pool == .mean ? Kernels.meanTokens(x) : Kernels.selectToken(x, index: 0)
        return mlpHead(pooled, capture: capture)
    }
}
