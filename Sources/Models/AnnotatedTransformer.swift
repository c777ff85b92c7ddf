// The annotated Transformer of seed 000 (`make_model`): encoder–decoder with pre-norm SublayerConnections, the
// seed's own LayerNorm (`a_2`, `b_2`; unbiased std, eps added to the std), four-Linear MultiHeadedAttention with the
// −1e9 mask fill, sinusoidal PositionalEncoding buffers `pe` [1, max_len, d_model], and the log-softmax Generator.
import Foundation
import TensorCore

/// The seed's `LayerNorm(features, eps=1e-6)`: `a_2 · (x − mean) / (std + eps) + b_2`, std unbiased.
public struct StdLayerNorm: Layer {
    public var a2: FloatTensor
    public var b2: FloatTensor
    public var eps: Float
    public var modulePath = ""
    public var reportsOutput = false

    public init(_ features: Int, eps: Float = 1e-6, rng: inout ParameterInit) {
        a2 = rng.constant([features], 1)
        b2 = rng.constant([features], 0)
        self.eps = eps
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.tensor("a_2", &a2)
        v.tensor("b_2", &b2)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor { Kernels.layerNormStd(x, weight: a2, bias: b2, eps: eps) }
    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor { report(self(x), to: capture) }
}

/// A boolean attention mask [B, rows, keys]; rows is 1 (`src_mask`, shared by every query) or the query count.
public struct AttentionMask: Sendable {
    public var values: [Bool]
    public var rows: Int
    public init(values: [Bool], rows: Int) { self.values = values; self.rows = rows }
}

/// The seed's `MultiHeadedAttention(h, d_model)`: `linears.0/1/2` project q, k, v; `linears.3` the output.
public struct MultiHeadedAttention: Module, Sendable {
    public var linears: ModuleList<Linear> { didSet { fused = DerivedCache() } }
    public let heads: Int
    /// q, k and v weights stacked [3·d, d] (and biases), for one GEMM when q = k = v (self-attention); recomputed
    /// only after `linears` changes.
    private var fused = DerivedCache<Linear>()

    public init(heads: Int, dModel: Int, rng: inout ParameterInit) {
        linears = ModuleList((0..<4).map { _ in Linear(dModel, dModel, rng: &rng) })
        self.heads = heads
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("linears", &linears)
    }

    var dModel: Int { linears[0].weight.shape[0] }
    var scale: Float { 1 / Float(dModel / heads).squareRoot() }

    /// residual + linears.3(attention(q = x W_q, k = v = memory W_{k,v})); `memory` nil means self-attention.
    public func callAsFunction(_ x: FloatTensor, memory: FloatTensor?, mask: AttentionMask?, residual: FloatTensor) -> FloatTensor {
        let d = dModel
        let a: FloatTensor
        if let memory {
            let q = linears[0](x), k = linears[1](memory), v = linears[2](memory)
            a = Kernels.maskedMultiHeadAttention(q: q, k: k, v: v, channels: d, heads: heads, mask: mask?.values,
                                                 maskRows: mask?.rows ?? 1, scale: scale)
        } else {
            let qkv = fused.get {
                var ini = ParameterInit.seeded(0)
                var l = Linear(0, 0, rng: &ini)
                l.weight = Kernels.concat([linears[0].weight, linears[1].weight, linears[2].weight], dim: 0)
                l.bias = Kernels.concat([linears[0].bias!, linears[1].bias!, linears[2].bias!], dim: 0)
                return l
            }(x)
            a = Kernels.maskedMultiHeadAttention(q: qkv, qOffset: 0, k: qkv, kOffset: d, v: qkv, vOffset: 2 * d,
                                                 channels: d, heads: heads, mask: mask?.values, maskRows: mask?.rows ?? 1,
                                                 scale: scale)
        }
        return linears[3](a, residual: residual)
    }
}

/// The seed's `PositionwiseFeedForward`: `w_2(relu(w_1(x)))`.
public struct PositionwiseFeedForward: Module, Sendable {
    public var w1: Linear
    public var w2: Linear

    public init(dModel: Int, dFF: Int, rng: inout ParameterInit) {
        w1 = Linear(dModel, dFF, rng: &rng)
        w2 = Linear(dFF, dModel, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("w_1", &w1)
        v.child("w_2", &w2)
    }

    /// residual + w_2(relu(w_1(x))).
    public func callAsFunction(_ x: FloatTensor, residual: FloatTensor) -> FloatTensor {
        w2(Kernels.relu(w1(x)), residual: residual)
    }
}

/// The seed's `SublayerConnection`: x + sublayer(norm(x)) (dropout is the identity at inference); only `norm`
/// holds tensors.
public struct SublayerConnection: Module, Sendable {
    public var norm: StdLayerNorm
    public init(_ size: Int, rng: inout ParameterInit) { norm = StdLayerNorm(size, rng: &rng) }
    public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("norm", &norm) }
}

/// The seed's `EncoderLayer`: self-attention and feed-forward, each in a SublayerConnection.
public struct EncoderLayer: Module, Sendable {
    public var selfAttn: MultiHeadedAttention
    public var feedForward: PositionwiseFeedForward
    public var sublayer: ModuleList<SublayerConnection>
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dModel: Int, dFF: Int, heads: Int, rng: inout ParameterInit) {
        selfAttn = MultiHeadedAttention(heads: heads, dModel: dModel, rng: &rng)
        feedForward = PositionwiseFeedForward(dModel: dModel, dFF: dFF, rng: &rng)
        sublayer = ModuleList((0..<2).map { _ in SublayerConnection(dModel, rng: &rng) })
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("self_attn", &selfAttn)
        v.child("feed_forward", &feedForward)
        v.child("sublayer", &sublayer)
    }

    public func callAsFunction(_ x0: FloatTensor, mask: AttentionMask, capture: ActivationCapture?) -> FloatTensor {
        let x = selfAttn(sublayer[0].norm(x0), memory: nil, mask: mask, residual: x0)
        return report(feedForward(sublayer[1].norm(x), residual: x), to: capture)
    }
}

/// The seed's `DecoderLayer`: self-attention (tgt_mask), source attention over the memory (src_mask), feed-forward.
public struct DecoderLayer: Module, Sendable {
    public var selfAttn: MultiHeadedAttention
    public var srcAttn: MultiHeadedAttention
    public var feedForward: PositionwiseFeedForward
    public var sublayer: ModuleList<SublayerConnection>
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dModel: Int, dFF: Int, heads: Int, rng: inout ParameterInit) {
        selfAttn = MultiHeadedAttention(heads: heads, dModel: dModel, rng: &rng)
        srcAttn = MultiHeadedAttention(heads: heads, dModel: dModel, rng: &rng)
        feedForward = PositionwiseFeedForward(dModel: dModel, dFF: dFF, rng: &rng)
        sublayer = ModuleList((0..<3).map { _ in SublayerConnection(dModel, rng: &rng) })
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("self_attn", &selfAttn)
        v.child("src_attn", &srcAttn)
        v.child("feed_forward", &feedForward)
        v.child("sublayer", &sublayer)
    }

    public func callAsFunction(_ x0: FloatTensor, memory: FloatTensor, srcMask: AttentionMask, tgtMask: AttentionMask,
                               capture: ActivationCapture?) -> FloatTensor {
        var x = selfAttn(sublayer[0].norm(x0), memory: nil, mask: tgtMask, residual: x0)
        x = srcAttn(sublayer[1].norm(x), memory: memory, mask: srcMask, residual: x)
        return report(feedForward(sublayer[2].norm(x), residual: x), to: capture)
    }
}

/// The seed's `Encoder` / `Decoder` stacks: `layers.N` then the final `norm`; both report their output.
public struct LayerStack<Element: Module & Sendable>: Module, Sendable {
    public var layers: ModuleList<Element>
    public var norm: StdLayerNorm
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(_ layers: [Element], dModel: Int, rng: inout ParameterInit) {
        self.layers = ModuleList(layers)
        norm = StdLayerNorm(dModel, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("layers", &layers)
        v.child("norm", &norm)
    }
}

/// `nn.Sequential(Embeddings(d_model, vocab), PositionalEncoding(d_model, dropout))`: `0.lut` and the `1.pe`
/// buffer. Forward: lut(ids) · √d_model + pe[:, :T].
public struct EmbeddingWithPosition: Module, Sendable {
    public struct Embeddings: Module, Sendable {
        public var lut: Embedding
        public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("lut", &lut) }
    }
    public struct PositionalEncoding: Module, Sendable {
        public var pe: FloatTensor
        public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.tensor("pe", &pe, kind: .buffer) }
    }

    public var embeddings: Embeddings
    public var position: PositionalEncoding

    /// The seed's default `max_len`.
    public static let maxLen = 5000

    public init(vocab: Int, dModel: Int, maxLen: Int = EmbeddingWithPosition.maxLen, rng: inout ParameterInit) {
        embeddings = Embeddings(lut: Embedding(vocab, dModel, rng: &rng))
        position = PositionalEncoding(pe: rng.isMeta ? rng.constant([1, maxLen, dModel], 0) : Self.sinusoid(maxLen: maxLen, dModel: dModel))
    }

    /// pe[p, 2i] = sin(p · e^{2i · −ln(10000)/d}), pe[p, 2i+1] = cos(…), computed in float32 steps as the seed does.
    static func sinusoid(maxLen: Int, dModel d: Int) -> FloatTensor {
        let k = Float(-(Foundation.log(10000.0) / Double(d)))
        let div = stride(from: 0, to: d, by: 2).map { Float(Foundation.exp(Double(Float($0) * k))) }
        return FloatTensor(shape: [1, maxLen, d]) { out in
            for p in 0..<maxLen {
                for (i, dv) in div.enumerated() {
                    let a = Double(Float(p) * dv)
                    out[p * d + 2 * i] = Float(Foundation.sin(a))
                    if 2 * i + 1 < d { out[p * d + 2 * i + 1] = Float(Foundation.cos(a)) }
                }
            }
        }
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &embeddings)
        v.child("1", &position)
    }

    public var maxLen: Int { position.pe.shape[1] }

    /// ids [B, T] (checked against the vocabulary and max_len by the model) → [B, T, d_model].
    public func callAsFunction(_ ids: [Int64], batch: Int, length: Int) -> FloatTensor {
        var x = embeddings.lut(ids, shape: [batch, length])
        let d = embeddings.lut.dim
        let s = Float(Double(d).squareRoot())
        x.data.withUnsafeMutableBufferPointer { xb in position.pe.data.withUnsafeBufferPointer { pb in
            for bi in 0..<batch {
                for i in 0..<(length * d) { xb[bi * length * d + i] = xb[bi * length * d + i] * s + pb[i] }
            }
        }}
        return x
    }
}

/// The seed's `Generator`: `proj` Linear, then log-softmax.
public struct Generator: Module, Sendable {
    public var proj: Linear
    public var modulePath = ""
    public var reportsOutput: Bool { true }
    public mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("proj", &proj) }
    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(Kernels.logSoftmax(proj(x)), to: capture)
    }
}

/// The seed's `Transformer` as `make_model(src_vocab, tgt_vocab, N, d_model, d_ff, h)` builds it.
public struct AnnotatedTransformer: Model {
    public let name: String
    public var encoder: LayerStack<EncoderLayer>
    public var decoder: LayerStack<DecoderLayer>
    public var srcEmbed: EmbeddingWithPosition
    public var tgtEmbed: EmbeddingWithPosition
    public var generator: Generator

    public init(name: String = "annotated_transformer", srcVocab: Int, tgtVocab: Int, layers n: Int = 6, dModel: Int = 512,
                dFF: Int = 2048, heads: Int = 8, rng: inout ParameterInit) throws {
        guard srcVocab >= 1, tgtVocab >= 1, n >= 0, dModel >= 2, dFF >= 1, heads >= 1, dModel % heads == 0 else {
            throw ModelError.invalidConfiguration("\(name): src_vocab \(srcVocab), tgt_vocab \(tgtVocab), layers \(n), d_model \(dModel) (≥ 2, divisible by heads \(heads)), d_ff \(dFF)")
        }
        self.name = name
        // make_model's construction order (encoder, decoder, embeddings, generator); PyTorch's own init
        // (xavier_uniform in the seed's training code) is not reproduced: checkpoints carry every tensor.
        encoder = LayerStack((0..<n).map { _ in EncoderLayer(dModel: dModel, dFF: dFF, heads: heads, rng: &rng) }, dModel: dModel, rng: &rng)
        decoder = LayerStack((0..<n).map { _ in DecoderLayer(dModel: dModel, dFF: dFF, heads: heads, rng: &rng) }, dModel: dModel, rng: &rng)
        srcEmbed = EmbeddingWithPosition(vocab: srcVocab, dModel: dModel, rng: &rng)
        tgtEmbed = EmbeddingWithPosition(vocab: tgtVocab, dModel: dModel, rng: &rng)
        generator = Generator(proj: Linear(dModel, tgtVocab, rng: &rng))
        bindModulePaths()
    }

    public var mappingFamily: String { "annotated_transformer" }
    var dModel: Int { srcEmbed.embeddings.lut.dim }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("encoder", &encoder)
        v.child("decoder", &decoder)
        v.child("src_embed", &srcEmbed)
        v.child("tgt_embed", &tgtEmbed)
        v.child("generator", &generator)
    }

    public var inputSpecs: [TensorSpec] {
        let s = Dim.free("S", example: 64), t = Dim.free("T", example: 64)
        return [TensorSpec("src", [.batch, s], dtype: .int64, summary: "source token ids"),
                TensorSpec("tgt", [.batch, t], dtype: .int64, summary: "target token ids"),
                TensorSpec("src_mask", [.batch, .fixed(1), s], dtype: .bool, summary: "source padding mask (false = masked)"),
                TensorSpec("tgt_mask", [.batch, t, t], dtype: .bool, summary: "target mask, e.g. subsequent_mask (false = masked)")]
    }

    public var outputSpecs: [TensorSpec] {
        [TensorSpec("output", [.batch, .free("T", example: 64), .fixed(dModel)], summary: "decoder output (Transformer.forward)")]
    }

    /// Same batch and lengths across the four inputs, lengths within `max_len`, token ids within the vocabularies.
    public func checkInputValues(_ inputs: [InputTensor]) throws {
        guard inputs.count == 4, case .int64(let ss, let src) = inputs[0], case .int64(let ts, let tgt) = inputs[1],
              case .bool(let sms, _) = inputs[2], case .bool(let tms, _) = inputs[3] else {
            throw ModelError.invalidInput(model: name, expected: inputDescription, found: inputs.first?.shape ?? [])
        }
        let (b, s, t) = (ss[0], ss[1], ts[1])
        for (input, shape, want) in [("tgt", ts, [b, t]), ("src_mask", sms, [b, 1, s]), ("tgt_mask", tms, [b, t, t])] where shape != want {
            throw ModelError.invalidValue(key: input, reason: "model \(name): shape \(shape) does not match src [\(b), \(s)] / tgt [\(b), \(t)]; expected \(want)")
        }
        for (input, len, embed) in [("src", s, srcEmbed), ("tgt", t, tgtEmbed)] where len > embed.maxLen {
            throw ModelError.invalidValue(key: input, reason: "model \(name): length \(len) exceeds the positional encoding's max_len \(embed.maxLen)")
        }
        try srcEmbed.embeddings.lut.check(src, input: "src", model: name)
        try tgtEmbed.embeddings.lut.check(tgt, input: "tgt", model: name)
    }

    public func forwardUnchecked(inputs: [InputTensor], capture: ActivationCapture?) -> [FloatTensor] {
        guard case .int64(let ss, let src) = inputs[0], case .int64(let ts, let tgt) = inputs[1],
              case .bool(_, let srcMask) = inputs[2], case .bool(_, let tgtMask) = inputs[3] else {
            preconditionFailure("\(name): forward without validated inputs")
        }
        let sm = AttentionMask(values: srcMask, rows: 1), tm = AttentionMask(values: tgtMask, rows: ts[1])
        // encode
        var x = srcEmbed(src, batch: ss[0], length: ss[1])
        for layer in encoder.layers.modules { x = layer(x, mask: sm, capture: capture) }
        let memory = encoder.report(encoder.norm(x), to: capture)
        // decode
        var y = tgtEmbed(tgt, batch: ts[0], length: ts[1])
        for layer in decoder.layers.modules { y = layer(y, memory: memory, srcMask: sm, tgtMask: tm, capture: capture) }
        let out = decoder.report(decoder.norm(y), to: capture)
        if capture != nil { _ = generator(out, capture: capture) }
        return [out]
    }
}
