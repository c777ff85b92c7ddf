// Seed 000's SimpleViT (vit-pytorch's `simple_vit.py` of that release): Linear patch embedding, a 2-D sin-cos
// position embedding computed from the patch grid (not stored), blocks with their own LayerNorm, mean pooling,
// `linear_head` = LayerNorm + Linear.
import Foundation
import TensorCore

/// Hyper-parameters of seed 000's `SimpleViT`.
public struct SimpleViTConfig: Sendable, Equatable {
    public var name: String
    public var imageSize: Int
    public var patchSize: Int
    public var numClasses: Int
    public var dim: Int
    public var depth: Int
    public var heads: Int
    public var mlpDim: Int
    public var dimHead: Int
    public var channels: Int

    public init(name: String, imageSize: Int = 256, patchSize: Int = 32, numClasses: Int = 1000, dim: Int = 1024,
                depth: Int = 6, heads: Int = 16, mlpDim: Int = 2048, dimHead: Int = 64, channels: Int = 3) {
        self.name = name; self.imageSize = imageSize; self.patchSize = patchSize; self.numClasses = numClasses
        self.dim = dim; self.depth = depth; self.heads = heads; self.mlpDim = mlpDim; self.dimHead = dimHead
        self.channels = channels
    }

    public var gridSize: Int { imageSize / patchSize }

    func validate() throws {
        // The sin-cos embedding splits dim into four quarters and divides by (dim/4 − 1): dim must be a multiple
        // of 4 and at least 8 (the seed asserts the first; the second would divide by zero there).
        guard imageSize >= 1, patchSize >= 1, imageSize % patchSize == 0, numClasses >= 1, dim >= 8, dim % 4 == 0,
              depth >= 0, heads >= 1, mlpDim >= 1, dimHead >= 1, channels >= 1 else {
            throw ModelError.invalidConfiguration(
                "\(name): image_size \(imageSize) must be a multiple of patch_size \(patchSize), dim \(dim) a multiple of 4 "
                + "and ≥ 8; heads \(heads), dim_head \(dimHead), mlp_dim \(mlpDim), channels \(channels), num_classes \(numClasses) ≥ 1")
        }
    }

    /// The seed's `posemb_sincos_2d` for an h × w grid: rows (y·w + x) of [sin(x·ω), cos(x·ω), sin(y·ω), cos(y·ω)]
    /// with ω_k = 10000^(−k/(dim/4 − 1)), k < dim/4, computed in float32 as PyTorch does.
    public static func sinCosPositions(h: Int, w: Int, dim: Int) -> FloatTensor {
        let q = dim / 4
        let omega: [Float] = (0..<q).map { k in
            let e = Float(k) / Float(q - 1)
            return 1 / Float(powf(10000, e))
        }
        var data = [Float](repeating: 0, count: h * w * dim)
        for y in 0..<h {
            for x in 0..<w {
                let row = (y * w + x) * dim
                for k in 0..<q {
                    let ax = Float(x) * omega[k], ay = Float(y) * omega[k]
                    data[row + k] = sinf(ax)
                    data[row + q + k] = cosf(ax)
                    data[row + 2 * q + k] = sinf(ay)
                    data[row + 3 * q + k] = cosf(ay)
                }
            }
        }
        return FloatTensor(shape: [1, h * w, dim], data: data)
    }
}

/// Seed 000's `SimpleViT`: to_patch_embedding (Linear) → + sin-cos positions → transformer (no final norm) → mean of
/// the tokens → linear_head (LayerNorm + Linear).
public struct SimpleViT: SingleInputModel {
    public typealias Block = LucidLayer<LucidAttentionBlock, LucidFeedForward>
    public let config: SimpleViTConfig
    public var toPatchEmbedding: LucidPatchEmbedding
    public var transformer: LucidTransformer<Block>
    public var linearHead: NormLinearHead
    /// The computed (unregistered) position embedding [1, h·w, dim].
    public let positions: FloatTensor

    public init(_ config: SimpleViTConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    public init(_ config: SimpleViTConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        let d = config.dim
        toPatchEmbedding = LucidPatchEmbedding(channels: config.channels, patchSize: config.patchSize, dim: d, normed: false,
                                               keepsGrid: true, rng: &rng)
        var layers: [Block] = []
        for _ in 0..<config.depth {
            let norm = LayerNorm(d, eps: 1e-5, rng: &rng)
            let attention = LucidAttention(dim: d, heads: config.heads, dimHead: config.dimHead, outBias: false,
                                           toOutKey: "to_out", rng: &rng)
            let ff = LucidFeedForward(dim: d, hidden: config.mlpDim, keys: .simple, rng: &rng)
            layers.append(Block(attn: LucidAttentionBlock(norm: norm, attention: attention, wrapped: false), ff: ff))
        }
        transformer = LucidTransformer(norm: nil, layers: layers)
        linearHead = NormLinearHead(dim: d, classes: config.numClasses, rng: &rng)
        positions = rng.isMeta ? FloatTensor(metaShape: [1, config.gridSize * config.gridSize, d])
            : SimpleViTConfig.sinCosPositions(h: config.gridSize, w: config.gridSize, dim: d)
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "simple_vit" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("to_patch_embedding", &toPatchEmbedding)
        v.child("transformer", &transformer)
        v.child("linear_head", &linearHead)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: config.channels, height: config.imageSize, width: config.imageSize)]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: config.numClasses)] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        // `rearrange(x, 'b ... d -> b (...) d') + pe`
        let grid = toPatchEmbedding(input, capture: capture)
        let x = Kernels.add(grid.reshaped([grid.shape[0], positions.shape[1], config.dim]), positions)
        let y = transformer(x, capture: capture)
        return linearHead(Kernels.meanTokens(y), capture: capture)
    }
}
