// The d2l notebook's ViT of seed 002: `Patch_conv` (conv with 3·p² channels), `Position_Embedding` (cls token appended
// after the patches), `Transformer_Block`s with d2l's bias-free `MultiHeadAttention`, `mlphead` on token 0.
import TensorCore

/// d2l's `MultiHeadAttention(num_hiddens, num_heads, dropout, bias=False)`: `W_q`, `W_k`, `W_v`, `W_o`, softmax(QKᵀ/√d)V
/// per head (d = head width), no valid_lens.
public struct D2LMultiHeadAttention: Module, Sendable {
    public var wq: Linear, wk: Linear, wv: Linear, wo: Linear
    public let heads: Int

    public init(hidden: Int, heads: Int, rng: inout ParameterInit) {
        wq = Linear(hidden, hidden, bias: false, rng: &rng)
        wk = Linear(hidden, hidden, bias: false, rng: &rng)
        wv = Linear(hidden, hidden, bias: false, rng: &rng)
        wo = Linear(hidden, hidden, bias: false, rng: &rng)
        self.heads = heads
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("W_q", &wq)
        v.child("W_k", &wk)
        v.child("W_v", &wv)
        v.child("W_o", &wo)
    }

    /// residual + W_o(attention(x, x, x)).
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        wo(Kernels.multiHeadAttention(q: wq(x), k: wk(x), v: wv(x), heads: heads), residual: residual)
    }
}

/// The notebook's `Transformer_Block`: X = norm1(X); X = X + Attention(X); X = X + mlp(norm2(X)) — the attention's
/// residual is the normalised input, as written. `mlp` = Linear(E, 2E), ReLU, Linear(2E, E).
public struct D2LTransformerBlock: Layer {
    public var norm1: LayerNorm
    public var attention: D2LMultiHeadAttention
    public var norm2: LayerNorm
    public var mlp0: Linear, mlp2: Linear
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(embeddings e: Int, heads: Int, rng: inout ParameterInit) {
        norm1 = LayerNorm(e, eps: 1e-5, rng: &rng)
        attention = D2LMultiHeadAttention(hidden: e, heads: heads, rng: &rng)
        norm2 = LayerNorm(e, eps: 1e-5, rng: &rng)
        mlp0 = Linear(e, 2 * e, rng: &rng)
        mlp2 = Linear(2 * e, e, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm1", &norm1)
        v.child("Attention", &attention)
        v.child("norm2", &norm2)
        v.child("mlp.0", &mlp0)
        v.child("mlp.2", &mlp2)
    }

    public func callAsFunction(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let n = norm1(input)
        let x = attention(n, residual: n)
        return report(mlp2(Kernels.relu(mlp0(norm2(x))), residual: x), to: capture)
    }
}

/// The notebook's `Vit(img_size, patch_size, X_shape, num_blocks, heads, dropout, classes)` with the forward:
/// patch → pos (patches then the cls token, plus `pos_emb`) → blocks → `mlphead` on token 0.
public struct D2LViT: SingleInputModel {
    /// `Patch_conv`: `conv` = Conv2d(3, 3·p², p, stride p), flattened to [N, P, 3·p²].
    public struct PatchConv: Layer {
        public var conv: Conv2d
        public let patch: Int
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("conv", &conv) }
        public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
            report(Kernels.patchEmbed(x, weight: conv.weight, bias: conv.bias, patch: patch), to: capture)
        }
    }

    /// `Position_Embedding`: `cls` [1, 1, E], `pos_emb` [1, tokens, E]; pos_emb + cat(patches, cls).
    public struct PositionEmbedding: Layer {
        public var cls: FloatTensor
        public var posEmb: FloatTensor
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.tensor("cls", &cls)
            v.tensor("pos_emb", &posEmb)
        }
        public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
            let n = x.shape[0], e = cls.count
            let c = FloatTensor(shape: [n, 1, e], data: Array([[Float]](repeating: cls.data, count: n).joined()))
            return report(Kernels.add(posEmb, Kernels.concat([x, c], dim: 1)), to: capture)
        }
    }

    /// The notebook's `Transformer`: blocks in a `Sequential` named `transformer` (`transformer0`, `transformer1`, …).
    public struct Blocks: Layer {
        public var blocks: [D2LTransformerBlock]
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.scope.append("transformer")
            for i in blocks.indices { v.child("transformer\(i)", &blocks[i]) }
            v.scope.removeLast()
        }
        public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
            var y = x
            for b in blocks { y = b(y, capture: capture) }
            return report(y, to: capture)
        }
    }

    public let name: String
    public let imgSize: Int
    public var patch: PatchConv
    public var pos: PositionEmbedding
    public var transformer: Blocks
    public var mlphead: Linear

    public init(name: String = "d2l_vit", imgSize: Int = 224, patchSize: Int = 16, blocks: Int = 2, heads: Int = 4, classes: Int = 10,
                rng: inout ParameterInit) throws {
        let e = 3 * patchSize * patchSize
        guard imgSize >= 1, patchSize >= 1, imgSize % patchSize == 0, blocks >= 0, heads >= 1, e % heads == 0, classes >= 1 else {
            throw ModelError.invalidConfiguration("\(name): img_size \(imgSize) must be a multiple of patch_size \(patchSize), and 3·patch_size² = \(e) divisible by heads \(heads)")
        }
        self.name = name
        self.imgSize = imgSize
        let tokens = (imgSize / patchSize) * (imgSize / patchSize) + 1
        patch = PatchConv(conv: Conv2d(3, e, kernel: patchSize, stride: patchSize, rng: &rng), patch: patchSize)
        pos = PositionEmbedding(cls: rng.truncatedNormal([1, 1, e], std: 1), posEmb: rng.truncatedNormal([1, tokens, e], std: 1))
        transformer = Blocks(blocks: (0..<blocks).map { _ in D2LTransformerBlock(embeddings: e, heads: heads, rng: &rng) })
        mlphead = Linear(e, classes, rng: &rng).reported()
        bindModulePaths()
    }

    public var mappingFamily: String { "d2l_vit" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("patch", &patch)
        v.child("pos", &pos)
        v.child("transformer", &transformer)
        v.child("mlphead", &mlphead)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: 3, height: imgSize, width: imgSize)]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: mlphead.weight.shape[0])] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let x = transformer(pos(patch(input, capture: capture), capture: capture), capture: capture)
        return mlphead(Kernels.selectToken(x, index: 0), capture: capture)
    }
}
