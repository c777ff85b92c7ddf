// Blocks of lucidrains' vit-pytorch family (ViT in its PreNorm and current layouts, SimpleViT, and CRATE, which
// its authors built on vit-pytorch): bias-free fused or shared q/k/v projections, feed-forward blocks that carry their
// own LayerNorm or sit in a `PreNorm` wrapper, the einops patch flattening, and the transformer stack.
import TensorCore

/// A block of a token sequence [B, T, D] → [B, T, D] whose forward includes its skip connection, if it has one.
public protocol TokenBlock: Module, Sendable {
    func callAsFunction(_ x: FloatTensor) -> FloatTensor
}

/// lucidrains' multi-head self-attention without its norm: `to_qkv` (no bias) → softmax(Q Kᵀ · dim_head^−½) V →
/// `to_out`. Two projections exist upstream: vit-pytorch's fused `to_qkv` (dim → 3·heads·dim_head, chunked into
/// q, k, v) and CRATE's single `qkv` (dim → heads·dim_head, used as q = k = v).
public struct LucidAttention: Module, Sendable {
    public enum Projection: Sendable { case fused, shared }
    public var toQkv: Linear
    /// `nil` when upstream's `to_out` is `nn.Identity` (one head with dim_head == dim).
    public var toOut: Linear?
    public let projection: Projection
    public let heads: Int
    /// `to_out.0` for `Sequential(Linear, Dropout)`, `to_out` for SimpleViT's plain `Linear`.
    public let toOutKey: String

    public init(dim: Int, heads: Int, dimHead: Int, projection: Projection = .fused, outBias: Bool = true,
                toOutKey: String = "to_out.0", rng: inout ParameterInit) {
        let inner = heads * dimHead
        toQkv = Linear(dim, projection == .fused ? 3 * inner : inner, bias: false, rng: &rng)
        let projectOut = !(heads == 1 && dimHead == dim)
        toOut = projectOut ? Linear(inner, dim, bias: outBias, rng: &rng) : nil
        self.projection = projection
        self.heads = heads
        self.toOutKey = toOutKey
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child(projection == .fused ? "to_qkv" : "qkv", &toQkv)
        v.child(toOutKey, &toOut)
    }

    /// residual + attention(x); the skip connection is accumulated by `to_out`'s GEMM.
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        let w = toQkv(x)
        let a = projection == .fused
            ? Kernels.multiHeadAttention(qkv: w, heads: heads)
            : Kernels.multiHeadAttention(q: w, k: w, v: w, heads: heads)
        if let toOut { return toOut(a, residual: residual) }
        return Kernels.add(a, residual)
    }
}

/// x + attention(norm(x)): the attention's LayerNorm either inside it (`N.0.norm`, `N.0.to_qkv`: today's vit-pytorch
/// and SimpleViT) or in a `PreNorm` wrapper (`N.0.norm`, `N.0.fn.to_qkv`: older vit-pytorch, CRATE).
public struct LucidAttentionBlock: TokenBlock {
    public var norm: LayerNorm
    public var attention: LucidAttention
    /// True for `PreNorm(dim, Attention(…))`: the attention's keys sit under `fn`.
    public let wrapped: Bool

    public init(norm: LayerNorm, attention: LucidAttention, wrapped: Bool) {
        self.norm = norm; self.attention = attention; self.wrapped = wrapped
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm", &norm)
        if wrapped { v.child("fn", &attention) } else { attention.visitParameters(&v) }
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor { attention(norm(x), residual: x) }
}

/// x + Linear(GELU(Linear(norm(x)))), GELU exact (erf). Keys name where upstream puts each layer: `net.0` / `net.1` /
/// `net.4` (today's vit-pytorch: LayerNorm, Linear, GELU, Dropout, Linear, Dropout), `net.0` / `net.1` / `net.3`
/// (SimpleViT), or `norm` / `fn.net.0` / `fn.net.3` (a `PreNorm` around Linear, GELU, Dropout, Linear, Dropout).
public struct LucidFeedForward: TokenBlock {
    public var norm: LayerNorm
    public var fc1: Linear
    public var fc2: Linear
    public let keys: Keys

    public struct Keys: Sendable {
        public var norm: String, fc1: String, fc2: String
        public init(norm: String, fc1: String, fc2: String) { self.norm = norm; self.fc1 = fc1; self.fc2 = fc2 }
        public static let current = Keys(norm: "net.0", fc1: "net.1", fc2: "net.4")
        public static let simple = Keys(norm: "net.0", fc1: "net.1", fc2: "net.3")
        public static let preNorm = Keys(norm: "norm", fc1: "fn.net.0", fc2: "fn.net.3")
    }

    public init(dim: Int, hidden: Int, keys: Keys, rng: inout ParameterInit) {
        norm = LayerNorm(dim, eps: 1e-5, rng: &rng)
        fc1 = Linear(dim, hidden, rng: &rng)
        fc2 = Linear(hidden, dim, rng: &rng)
        self.keys = keys
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child(keys.norm, &norm)
        v.child(keys.fc1, &fc1)
        v.child(keys.fc2, &fc2)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        fc2(fc1(norm(x), activation: .gelu), residual: x)
    }
}

/// One entry of `transformer.layers`: `ModuleList([attn, ff])`, keyed `0` and `1`; x → ff(attn(x)).
public struct LucidLayer<Attn: TokenBlock, FF: TokenBlock>: TokenBlock {
    public var attn: Attn
    public var ff: FF

    public init(attn: Attn, ff: FF) { self.attn = attn; self.ff = ff }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &attn)
        v.child("1", &ff)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor { ff(attn(x)) }
}

/// `Transformer`: an optional final `norm` (today's vit-pytorch registers it before `layers`) and `layers`.
/// Reports its output as `transformer`.
public struct LucidTransformer<Block: TokenBlock>: Layer {
    public var norm: LayerNorm?
    public var layers: ModuleList<Block>
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(norm: LayerNorm?, layers: [Block]) {
        self.norm = norm
        self.layers = ModuleList(layers)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm", &norm)
        v.child("layers", &layers)
    }

    public func callAsFunction(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var x = input
        for layer in layers.modules { x = layer(x) }
        if let norm { x = norm(x) }
        return report(x, to: capture)
    }
}

/// `to_patch_embedding`: `Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')` (index 0, no parameters), then either
/// LayerNorm(patch_dim), Linear, LayerNorm(dim) at `1`, `2`, `3` (today's vit-pytorch, SimpleViT, CRATE) or a Linear
/// alone at `1` (older vit-pytorch). Reports its output as `to_patch_embedding`.
public struct LucidPatchEmbedding: Layer {
    public var preNorm: LayerNorm?
    public var linear: Linear
    public var postNorm: LayerNorm?
    public let patchSize: Int
    /// Seed 000's SimpleViT rearranges to `b h w (p1 p2 c)`: the output keeps the patch grid, [B, H/p, W/p, dim].
    public let keepsGrid: Bool
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(channels: Int, patchSize: Int, dim: Int, normed: Bool, keepsGrid: Bool = false, rng: inout ParameterInit) {
        let patchDim = channels * patchSize * patchSize
        preNorm = normed ? LayerNorm(patchDim, eps: 1e-5, rng: &rng) : nil
        linear = Linear(patchDim, dim, rng: &rng)
        postNorm = normed ? LayerNorm(dim, eps: 1e-5, rng: &rng) : nil
        self.patchSize = patchSize
        self.keepsGrid = keepsGrid
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("1", &preNorm)
        v.child(preNorm == nil ? "1" : "2", &linear)
        v.child("3", &postNorm)
    }

    /// [B, C, H, W] → [B, (H/p)·(W/p), dim] (or [B, H/p, W/p, dim] when `keepsGrid`).
    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var t = Kernels.patchRearrange(x, patch: patchSize)
        if let preNorm { t = preNorm(t) }
        t = linear(t)
        if let postNorm { t = postNorm(t) }
        if keepsGrid { t = t.reshaped([x.shape[0], x.shape[2] / patchSize, x.shape[3] / patchSize, t.shape[2]]) }
        return report(t, to: capture)
    }
}

/// `Sequential(LayerNorm(dim), Linear(dim, classes))`: a classifier head keyed `0` and `1` (`mlp_head`,
/// `linear_head`). Reports its output under its own path.
public struct NormLinearHead: Layer {
    public var norm: LayerNorm
    public var fc: Linear
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dim: Int, classes: Int, rng: inout ParameterInit) {
        norm = LayerNorm(dim, eps: 1e-5, rng: &rng)
        fc = Linear(dim, classes, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &norm)
        v.child("1", &fc)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(fc(norm(x)), to: capture)
    }
}

/// Class-token and position-embedding bookkeeping shared by the lucidrains ViT and CRATE:
/// [cls; patches] + pos_embedding[:, :n+1].
enum LucidTokens {
    static func prepend(_ cls: FloatTensor, to patches: FloatTensor, adding pos: FloatTensor) -> FloatTensor {
        let (n, d) = (patches.shape[0], patches.shape[2])
        let tokens = FloatTensor(shape: [n, 1, d], data: Array([[Float]](repeating: cls.data, count: n).joined()))
        return Kernels.add(Kernels.concat([tokens, patches], dim: 1), pos)
    }
}
