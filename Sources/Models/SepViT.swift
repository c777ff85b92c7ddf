// SepViT of seed 003 as vit-pytorch's `sep_vit.py` lays it out: per stage an OverlappingPatchEmbed conv, a PEG
// depthwise conv, and DSSA (window attention with window tokens) + conv feed-forward blocks with ChanLayerNorm;
// mean pool → LayerNorm → Linear. Inside the transformer the map is kept channels-last ([B, H·W, C]) so the 1×1
// convolutions are GEMMs; reported activations are NCHW as PyTorch's.
import TensorCore

/// vit-pytorch's `ChanLayerNorm(dim, eps=1e-5)`: normalises over channels (biased variance), `g`, `b` [1, C, 1, 1].
public struct ChanLayerNorm: Module, Sendable {
    public var g: FloatTensor
    public var b: FloatTensor
    public init(_ dim: Int, rng: inout ParameterInit) {
        g = rng.constant([1, dim, 1, 1], 1)
        b = rng.constant([1, dim, 1, 1], 0)
    }
    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("g", &g)
        v.tensor("b", &b)
    }
    /// On channels-last tokens [B, T, C].
    public func callAsFunction(tokens x: FloatTensor) -> FloatTensor { Kernels.layerNorm(x, weight: g, bias: b, eps: 1e-5) }
}

/// A 1×1 convolution (`nn.Conv1d(i, o, 1)` weight [o, i, 1], or `nn.Conv2d(i, o, 1)` [o, i, 1, 1]) applied to
/// channels-last tokens as a GEMM.
public struct PointwiseConv: Module, Sendable {
    public var weight: FloatTensor { didSet { matrix = DerivedCache(); packed = DerivedCache() } }
    public var bias: FloatTensor?
    private var matrix = DerivedCache<FloatTensor>()
    /// `w` packed for the packed GEMM (see `Linear`).
    private var packed = DerivedCache<PackedLinearWeight>()

    public init(_ inChannels: Int, _ outChannels: Int, spatialDims: Int, bias: Bool = true, rng: inout ParameterInit) {
        let bound = 1 / Float(max(inChannels, 1)).squareRoot()
        weight = rng.uniform([outChannels, inChannels] + [Int](repeating: 1, count: spatialDims), bound: bound)
        self.bias = bias ? rng.uniform([outChannels], bound: bound) : nil
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("weight", &weight)
        if bias != nil { v.tensor("bias", &bias!) }
    }

    var w: FloatTensor { matrix.get { FloatTensor(shape: [weight.shape[0], weight.shape[1]], data: weight.data) } }

    package func callAsFunction(_ x: FloatTensor, activation: Kernels.VectorFunction? = nil, residual: FloatTensor? = nil) -> FloatTensor {
        Kernels.linear(x, weight: w, bias: bias, activation: activation, residual: residual, packed: packed)
    }
}

/// NCHW ↔ channels-last tokens.
enum TokenMap {
    static func tokens(_ x: FloatTensor) -> FloatTensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return Kernels.transposeLastTwo(FloatTensor(shape: [b, c, h * w], data: x.data))
    }
    static func map(_ t: FloatTensor, height: Int, width: Int) -> FloatTensor {
        let y = Kernels.transposeLastTwo(t)
        return FloatTensor(shape: [t.shape[0], t.shape[2], height, width], data: y.data)
    }
}

/// vit-pytorch's `DSSA`: ChanLayerNorm, window partition with a learned window token, multi-head attention inside each
/// window (`to_qkv`, bias-free Conv1d), then — with more than one window — attention between the windows' tokens
/// (`window_tokens_to_qk`: LayerNorm(dim_head), GELU, Conv1d) that mixes the windows' outputs; `to_out` 1×1 conv.
public struct DSSA: Module, Sendable {
    public var windowTokens: FloatTensor
    public var norm: ChanLayerNorm
    public var toQKV: PointwiseConv
    public var tokenNorm: LayerNorm
    public var tokenToQK: PointwiseConv
    public var toOut: PointwiseConv
    public let heads: Int, dimHead: Int, window: Int
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dim: Int, heads: Int, dimHead: Int, window: Int, rng: inout ParameterInit) {
        let inner = heads * dimHead
        windowTokens = rng.truncatedNormal([dim], std: 1)
        norm = ChanLayerNorm(dim, rng: &rng)
        toQKV = PointwiseConv(dim, 3 * inner, spatialDims: 1, bias: false, rng: &rng)
        tokenNorm = LayerNorm(dimHead, eps: 1e-5, rng: &rng)
        tokenToQK = PointwiseConv(inner, 2 * inner, spatialDims: 1, rng: &rng)
        toOut = PointwiseConv(inner, dim, spatialDims: 2, rng: &rng)
        self.heads = heads; self.dimHead = dimHead; self.window = window
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("window_tokens", &windowTokens)
        v.child("norm", &norm)
        v.child("to_qkv", &toQKV)
        v.child("window_tokens_to_qk.0", &tokenNorm)
        v.child("window_tokens_to_qk.3", &tokenToQK)
        v.child("to_out.0", &toOut)
    }

    /// tokens [B, H·W, C] → DSSA(x) (before the block's residual), same layout.
    public func callAsFunction(_ x: FloatTensor, batch: Int, height: Int, width: Int) -> FloatTensor {
        let g = Kernels.Windows(batch: batch, height: height, width: width, size: window)
        let inner = heads * dimHead, scale = 1 / Float(dimHead).squareRoot()
        let windows = Kernels.windowPartition(norm(tokens: x), g, token: windowTokens)
        let out = Kernels.multiHeadAttention(qkv: toQKV(windows), heads: heads, scale: scale)   // [B·nWin, 1 + w², inner]
        let nw = g.perImage
        guard nw > 1 else { return toOut(Kernels.windowMerge(out, g)) }
        // Window tokens [B, nWin, heads, d] → per-head LayerNorm + GELU → Conv1d → per head (w_q, w_k) of d each.
        let n = 1 + g.pixels
        let tokens = FloatTensor(shape: [batch * nw * heads, dimHead]) { tb in
            out.data.withUnsafeBufferPointer { ob in
                for bw in 0..<(batch * nw) { (tb.baseAddress! + bw * inner).update(from: ob.baseAddress! + bw * n * inner, count: inner) }
            }
        }
        var t = tokenNorm(tokens)
        Kernels.applyInPlace(.gelu, &t)
        let qk = tokenToQK(FloatTensor(shape: [batch * nw, inner], data: t.data))   // [B·nWin, heads·2d]
        let attn = Kernels.windowTokenAttention(qk, batch: batch, windows: nw, heads: heads, dimHead: dimHead, scale: scale)
        return toOut(Kernels.windowAggregate(out, attention: attn, heads: heads, g))
    }
}

/// vit-pytorch's `FeedForward`: `net` = ChanLayerNorm, Conv2d 1×1 (dim → mult·dim), GELU, Dropout, Conv2d 1×1 back.
public struct SepFeedForward: Module, Sendable {
    public var norm: ChanLayerNorm
    public var fc1: PointwiseConv
    public var fc2: PointwiseConv
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dim: Int, mult: Int, rng: inout ParameterInit) {
        norm = ChanLayerNorm(dim, rng: &rng)
        fc1 = PointwiseConv(dim, dim * mult, spatialDims: 2, rng: &rng)
        fc2 = PointwiseConv(dim * mult, dim, spatialDims: 2, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("net.0", &norm)
        v.child("net.1", &fc1)
        v.child("net.4", &fc2)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor { fc2(fc1(norm(tokens: x), activation: .gelu)) }
}

/// One `nn.ModuleList([DSSA, FeedForward])` of a stage's `Transformer`.
public struct SepBlock: Module, Sendable {
    public var attn: DSSA
    public var ff: SepFeedForward
    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &attn)
        v.child("1", &ff)
    }
}

/// vit-pytorch's SepViT `Transformer`: blocks (x = attn(x) + x; x = ff(x) + x), then ChanLayerNorm except in the last stage.
public struct SepTransformer: Module, Sendable {
    public var layers: ModuleList<SepBlock>
    public var norm: ChanLayerNorm?
    public var modulePath = ""
    public var reportsOutput: Bool { true }
    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("layers", &layers)
        v.child("norm", &norm)
    }
}

/// One stage: `0` OverlappingPatchEmbed (`conv`, kernel 2s − 1, stride s, padding s − 1), `1` PEG (`proj`, depthwise
/// 3×3, added to its input), `2` Transformer.
public struct SepStage: Module, Sendable {
    public struct PatchEmbed: Module, Sendable {
        public var conv: Conv2d
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("conv", &conv) }
    }
    public struct PEG: Module, Sendable {
        public var proj: Conv2d
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("proj", &proj) }
    }
    public var embed: PatchEmbed
    public var peg: PEG
    public var transformer: SepTransformer

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &embed)
        v.child("1", &peg)
        v.child("2", &transformer)
    }

    /// NCHW in, NCHW out.
    func callAsFunction(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let e = embed.report(embed.conv(input), to: capture)
        let p = peg.report(Kernels.conv2d(e, weight: peg.proj.weight, bias: peg.proj.bias, options: peg.proj.options, residual: e), to: capture)
        let (b, h, w) = (p.shape[0], p.shape[2], p.shape[3])
        var x = TokenMap.tokens(p)
        for block in transformer.layers.modules {
            let a = block.attn(x, batch: b, height: h, width: w)
            if capture != nil { block.attn.report(TokenMap.map(a, height: h, width: w), to: capture) }
            Kernels.addInPlace(&x, a)
            let f = block.ff(x)
            if capture != nil { block.ff.report(TokenMap.map(f, height: h, width: w), to: capture) }
            Kernels.addInPlace(&x, f)
        }
        if let norm = transformer.norm { x = norm(tokens: x) }
        return transformer.report(TokenMap.map(x, height: h, width: w), to: capture)
    }
}

/// vit-pytorch's `SepViT(num_classes, dim, depth, heads, window_size, dim_head, ff_mult, channels)`: stage widths
/// dim·2^i, strides (4, 2, 2, …); `mlp_head` = mean over H, W → LayerNorm → Linear.
public struct SepViT: SingleInputModel {
    public let name: String
    public let imageSize: Int
    public let channels: Int
    public var layers: ModuleList<SepStage>
    public var mlpHead: MlpHead

    /// `mlp_head` = Sequential(Reduce mean, LayerNorm (`1`), Linear (`2`)).
    public struct MlpHead: Module, Sendable {
        public var norm: LayerNorm
        public var fc: Linear
        public var modulePath = ""
        public var reportsOutput: Bool { true }
        public mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.child("1", &norm)
            v.child("2", &fc)
        }
    }

    /// Spatial sizes after each stage's patch embedding for an `image`-sized input.
    public static func stageSizes(image: Int, stages: Int) -> [Int] {
        var s = image, out: [Int] = []
        for i in 0..<stages {
            let stride = i == 0 ? 4 : 2, k = 2 * stride - 1
            s = (s + 2 * (k / 2) - k) / stride + 1
            out.append(s)
        }
        return out
    }

    public init(name: String = "sepvit_lite", imageSize: Int = 224, numClasses: Int = 1000, dim: Int = 32, depth: [Int] = [1, 2, 6, 2],
                heads: [Int] = [1, 2, 4, 8], window: Int = 7, dimHead: Int = 32, ffMult: Int = 4, channels: Int = 3,
                rng: inout ParameterInit) throws {
        let stages = depth.count
        let sizes = Self.stageSizes(image: imageSize, stages: stages)
        guard stages >= 1, heads.count == stages, imageSize >= 1, numClasses >= 1, dim >= 1, window >= 1, dimHead >= 1, ffMult >= 1,
              channels >= 1, sizes.allSatisfy({ $0 >= 1 && $0 % window == 0 }) else {
            throw ModelError.invalidConfiguration("\(name): \(depth.count) stages (depth \(depth)) need as many heads (\(heads)), and every stage's map (\(sizes) for image_size \(imageSize)) must be a multiple of window_size \(window)")
        }
        guard stages <= 24, dim <= (1 << 20) >> (stages - 1) else {
            throw ModelError.invalidConfiguration("\(name): dim \(dim) · 2^\(stages - 1) is too wide")
        }
        self.name = name; self.imageSize = imageSize; self.channels = channels
        var stageList: [SepStage] = []
        var cin = channels
        for i in 0..<stages {
            let d = dim << i, stride = i == 0 ? 4 : 2, k = 2 * stride - 1
            let embed = SepStage.PatchEmbed(conv: Conv2d(cin, d, kernel: k, stride: stride, padding: k / 2, rng: &rng))
            let peg = SepStage.PEG(proj: Conv2d(d, d, kernel: 3, padding: 1, groups: d, rng: &rng))
            let blocks = (0..<depth[i]).map { _ in
                SepBlock(attn: DSSA(dim: d, heads: heads[i], dimHead: dimHead, window: window, rng: &rng),
                         ff: SepFeedForward(dim: d, mult: ffMult, rng: &rng))
            }
            let norm = i == stages - 1 ? nil : ChanLayerNorm(d, rng: &rng)
            stageList.append(SepStage(embed: embed, peg: peg, transformer: SepTransformer(layers: ModuleList(blocks), norm: norm)))
            cin = d
        }
        layers = ModuleList(stageList)
        mlpHead = MlpHead(norm: LayerNorm(cin, eps: 1e-5, rng: &rng), fc: Linear(cin, numClasses, rng: &rng))
        bindModulePaths()
    }

    public var mappingFamily: String { "sepvit" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("layers", &layers)
        v.child("mlp_head", &mlpHead)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: channels, height: imageSize, width: imageSize)]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: mlpHead.fc.weight.shape[0])] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var x = input
        for stage in layers.modules { x = stage(x, capture: capture) }
        let pooled = Kernels.meanTokens(TokenMap.tokens(x))
        return mlpHead.report(mlpHead.fc(mlpHead.norm(pooled)), to: capture)
    }
}
