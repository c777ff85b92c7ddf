// lucidrains vit-pytorch `ViT` in its two layouts: seed 004's (today's vit-pytorch: LayerNorm'd patch embedding,
// blocks holding their own LayerNorm, final transformer norm, Linear head) and seed 000's (older vit-pytorch:
// Linear patch embedding, `PreNorm` wrappers, no final norm, LayerNorm + Linear head).
import TensorCore

/// Hyper-parameters of vit-pytorch's `ViT` (and CRATE's, which has no `mlp_dim`).
public struct LucidrainsViTConfig: Sendable, Equatable {
    /// Which vit-pytorch release's module layout the model registers.
    public enum Layout: String, Sendable {
        /// Seed 004 / today's vit-pytorch: `to_patch_embedding.1/2/3`, `layers.N.0.norm`, `layers.N.0.to_qkv`,
        /// `layers.N.1.net.*`, `transformer.norm`, `mlp_head` Linear.
        case current
        /// Seed 000 / older vit-pytorch: `to_patch_embedding.1`, `layers.N.0.norm` + `layers.N.0.fn.to_qkv`,
        /// `layers.N.1.fn.net.*`, no transformer norm, `mlp_head.0/1` (LayerNorm + Linear).
        case prenorm
    }
    public enum Pool: String, Sendable { case cls, mean }

    public var name: String
    public var layout: Layout
    public var imageSize: Int
    public var patchSize: Int
    public var numClasses: Int
    public var dim: Int
    public var depth: Int
    public var heads: Int
    public var mlpDim: Int
    public var dimHead: Int
    public var pool: Pool
    public var channels: Int

    public init(name: String, layout: Layout, imageSize: Int = 256, patchSize: Int = 32, numClasses: Int = 1000,
                dim: Int = 1024, depth: Int = 6, heads: Int = 16, mlpDim: Int = 2048, dimHead: Int = 64,
                pool: Pool = .cls, channels: Int = 3) {
        self.name = name; self.layout = layout; self.imageSize = imageSize; self.patchSize = patchSize
        self.numClasses = numClasses; self.dim = dim; self.depth = depth; self.heads = heads; self.mlpDim = mlpDim
        self.dimHead = dimHead; self.pool = pool; self.channels = channels
    }

    public var gridSize: Int { imageSize / patchSize }
    public var numPatches: Int { gridSize * gridSize }

    func validate() throws {
        guard imageSize >= 1, patchSize >= 1, imageSize % patchSize == 0, numClasses >= 1, dim >= 1, depth >= 0,
              heads >= 1, mlpDim >= 1, dimHead >= 1, channels >= 1 else {
            throw ModelError.invalidConfiguration(
                "\(name): image_size \(imageSize) must be a multiple of patch_size \(patchSize); dim \(dim), heads \(heads), "
                + "dim_head \(dimHead), mlp_dim \(mlpDim), channels \(channels) and num_classes \(numClasses) must be ≥ 1")
        }
    }
}

/// vit-pytorch's `ViT`: to_patch_embedding → [cls; patches] + pos_embedding → transformer → cls token or token mean
/// → mlp_head. `pos_embedding` [1, n+1, dim] and `cls_token` [1, 1, dim] as the seeds register them (today's
/// vit-pytorch stores [n+1, dim] and [1, dim]: `Mappings/lucidrains_vit.vit-pytorch.yaml` adds the batch axis).
public struct LucidrainsViT: SingleInputModel {
    public typealias Block = LucidLayer<LucidAttentionBlock, LucidFeedForward>
    public let config: LucidrainsViTConfig
    public var posEmbedding: FloatTensor
    public var clsToken: FloatTensor
    public var toPatchEmbedding: LucidPatchEmbedding
    /// `dropout` (emb_dropout): the identity at inference.
    public var dropout = Dropout()
    public var transformer: LucidTransformer<Block>
    /// `mlp_head`: a Linear (current layout) or LayerNorm + Linear (PreNorm layout).
    public var linearHead: Linear?
    public var normedHead: NormLinearHead?

    public init(_ config: LucidrainsViTConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    public init(_ config: LucidrainsViTConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        let d = config.dim, current = config.layout == .current
        posEmbedding = rng.truncatedNormal([1, config.numPatches + 1, d], std: 1)
        clsToken = rng.truncatedNormal([1, 1, d], std: 1)
        toPatchEmbedding = LucidPatchEmbedding(channels: config.channels, patchSize: config.patchSize, dim: d, normed: current, rng: &rng)
        var layers: [Block] = []
        for _ in 0..<config.depth {
            let norm = LayerNorm(d, eps: 1e-5, rng: &rng)
            let attention = LucidAttention(dim: d, heads: config.heads, dimHead: config.dimHead, rng: &rng)
            let ff = LucidFeedForward(dim: d, hidden: config.mlpDim, keys: current ? .current : .preNorm, rng: &rng)
            layers.append(Block(attn: LucidAttentionBlock(norm: norm, attention: attention, wrapped: !current), ff: ff))
        }
        transformer = LucidTransformer(norm: current ? LayerNorm(d, eps: 1e-5, rng: &rng) : nil, layers: layers)
        if current {
            linearHead = Linear(d, config.numClasses, rng: &rng).reported()
        } else {
            normedHead = NormLinearHead(dim: d, classes: config.numClasses, rng: &rng)
        }
        bindModulePaths()
    }

    public var name: String { config.name }
    /// `lucidrains_vit` or `lucidrains_vit_prenorm`: the layouts' keys differ, so their tables do too.
    public var mappingFamily: String { config.layout == .current ? "lucidrains_vit" : "lucidrains_vit_prenorm" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("pos_embedding", &posEmbedding)
        v.tensor("cls_token", &clsToken)
        v.child("to_patch_embedding", &toPatchEmbedding)
        v.child("dropout", &dropout)
        v.child("transformer", &transformer)
        v.child("mlp_head", &linearHead)
        v.child("mlp_head", &normedHead)
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
        if let linearHead { return linearHead(pooled, capture: capture) }
        guard let normedHead else { return pooled }
        return normedHead(pooled, capture: capture)
    }
}
