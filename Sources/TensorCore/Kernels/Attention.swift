extension Kernels {
    /// Multi-head self-attention on a fused projection, as timm's `Attention` computes it:
    /// qkv [B, N, 3·C] laid out as (3, heads, headDim) along the last axis → softmax(Q Kᵀ · scale) V as [B, N, C]
    /// with heads concatenated. `scale` defaults to headDim^−½.
    ///
    /// Per (batch, head): one GEMM for the scores, a row softmax, one GEMM for the weighted values. Q, K and V
    /// are read in place through leading dimensions (no transposes or copies); the output is written directly in
    /// [B, N, C] layout.
    public static func multiHeadAttention(qkv: FloatTensor, heads: Int, scale: Float? = nil) -> FloatTensor {
        precondition(qkv.rank == 3 && heads > 0 && qkv.shape[2] % (3 * heads) == 0,
                     "multiHeadAttention: qkv \(qkv.shape) is not [B, N, 3·heads·headDim]")
        let (b, n, c3) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
        let c = c3 / 3
        let hd = c / heads
        return qkv.data.withUnsafeBufferPointer { qb in
            let base = qb.baseAddress!
            return attentionCore(q: base, k: base + c, v: base + 2 * c, rowStride: c3, batchStride: n * c3,
                                 batch: b, tokens: n, keys: n, heads: heads, headDim: hd,
                                 scale: scale ?? 1 / Float(hd).squareRoot())
        }
    }

    /// Multi-head scaled-dot-product attention on separate q [B, Nq, C], k and v [B, Nk, C] (heads split along C).
    public static func multiHeadAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, heads: Int,
                                          scale: Float? = nil) -> FloatTensor {
        precondition(q.rank == 3 && k.rank == 3 && v.shape == k.shape && q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2],
                     "multiHeadAttention: q \(q.shape), k \(k.shape), v \(v.shape) must be [B, N, C] with matching B and C")
        let (b, nq, c) = (q.shape[0], q.shape[1], q.shape[2])
        let nk = k.shape[1]
        precondition(heads > 0 && c % heads == 0, "multiHeadAttention: \(c) channels do not split into \(heads) heads")
        let hd = c / heads
        return q.data.withUnsafeBufferPointer { qb in k.data.withUnsafeBufferPointer { kb in v.data.withUnsafeBufferPointer { vb in
            attentionCore(q: qb.baseAddress!, k: kb.baseAddress!, v: vb.baseAddress!, rowStride: c, batchStride: nq * c,
                          kvBatchStride: nk * c, batch: b, tokens: nq, keys: nk, heads: heads, headDim: hd,
                          scale: scale ?? 1 / Float(hd).squareRoot())
        }}}
    }

    /// Runs the (batch, head) pairs in parallel, one contiguous range per `Parallel` worker, each with its own
    /// scores buffer and single-threaded GEMMs: per pair, S = scale · Q Kᵀ (tokens × keys), a row softmax while S is
    /// in cache, then O = S V written straight into the head's columns of the [B, N, C] output.
    static func attentionCore(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              rowStride: Int, batchStride: Int, kvBatchStride: Int? = nil,
                              batch: Int, tokens: Int, keys: Int, heads: Int, headDim hd: Int, scale: Float) -> FloatTensor {
        let c = heads * hd
        let kvStride = kvBatchStride ?? batchStride
        let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
        return FloatTensor(shape: [batch, tokens, c]) { ob in
            guard batch * tokens * c > 0 else { return }
            let out = SendablePointer(ob.baseAddress!)
            Gemm.withSingleThreadedBLAS {
                Parallel.forEachChunk(batch * heads, costPerItem: 4 * tokens * keys * hd) { pairs in
                    var scores = [Float](repeating: 0, count: tokens * keys)
                    scores.withUnsafeMutableBufferPointer { sb in
                        let s = sb.baseAddress!
                        for pair in pairs {
                            let bi = pair / heads, h = pair % heads
                            let qh = qp.p + bi * batchStride + h * hd
                            let kh = kp.p + bi * kvStride + h * hd
                            let vh = vp.p + bi * kvStride + h * hd
                            Gemm.sgemm(transA: false, transB: true, m: tokens, n: keys, k: hd, alpha: scale,
                                       a: qh, lda: rowStride, b: kh, ldb: rowStride, c: s, ldc: keys)
                            for r in 0..<tokens { softmaxRow(s + r * keys, keys) }
                            Gemm.sgemm(m: tokens, n: hd, k: keys, a: s, lda: keys, b: vh, ldb: rowStride,
                                       c: out.p + bi * tokens * c + h * hd, ldc: c)
                        }
                    }
                }
            }
        }
    }
}
