// Kernels of the sequence / seed-transformer families: the annotated Transformer's LayerNorm (unbiased standard
// deviation, epsilon added to the deviation), masked multi-head attention (PyTorch's `masked_fill(mask == 0, fill)`
// before the softmax), and row-wise log-softmax.
extension Kernels {
    /// The annotated Transformer's `LayerNorm`: a · (x − mean) / (std + eps) + b over the last dimension, with the
    /// unbiased standard deviation (`x.std(-1)`, divisor d − 1). Sums in Double; parallel over rows. A row of one
    /// element has std NaN, as in PyTorch.
    public static func layerNormStd(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor, eps: Float) -> FloatTensor {
        normalizeRows(x, weight: weight, bias: bias, kernel: "layerNormStd") { src, dst, d, w, b in
            var sum: Double = 0
            for j in 0..<d { sum += Double(src[j]) }
            let mean = Float(sum / Double(d))
            var sq: Double = 0
            for j in 0..<d { let t = Double(src[j] - mean); sq += t * t }
            let std = Float((sq / Double(d - 1)).squareRoot())
            let inv = 1 / (std + eps)
            for j in 0..<d { dst[j] = w[j] * (src[j] - mean) * inv + b[j] }
        }
    }

    /// `F.log_softmax(x, dim=-1)`: x − max − log Σ exp(x − max) per row. Parallel over rows.
    public static func logSoftmax(_ x: FloatTensor) -> FloatTensor {
        let d = x.shape.last ?? 0
        var y = x
        guard d > 0, x.count > 0 else { return y }
        let rows = x.count / d
        y.data.withUnsafeMutableBufferPointer { yb in
            let p = SendablePointer(yb.baseAddress!)
            Parallel.forEachChunk(rows, costPerItem: 8 * d) { range in
                var tmp = [Float](repeating: 0, count: d)
                tmp.withUnsafeMutableBufferPointer { tb in
                    for r in range {
                        let row = p.p + r * d
                        var m = -Float.infinity
                        for j in 0..<d { m = Swift.max(m, row[j]) }
                        if m == -.infinity { m = 0 }
                        for j in 0..<d { tb[j] = row[j] - m }
                        FastMath.apply(tb.baseAddress!, d, FastMath.exp)
                        var s: Double = 0
                        for j in 0..<d { s += Double(tb[j]) }
                        let shift = m + Float(Foundation.log(s))
                        for j in 0..<d { row[j] -= shift }
                    }
                }
            }
        }
        return y
    }

    /// Multi-head scaled-dot-product attention with a boolean mask, as the annotated Transformer's `attention`:
    /// per head, scores = Q Kᵀ · scale; scores[i, j] = `fill` where mask[b, i or 0, j] is false; softmax; · V.
    ///
    /// q is [B, Tq, C] and k, v are [B, Tk, C] with heads split along C (head h owns columns h·hd ..< (h+1)·hd);
    /// each may be a column slice of a wider tensor: `qOffset` / `qStride` (and the k, v ones) give the first
    /// column and the row length, so a fused [B, T, 3C] projection is read in place. `mask` is [B, Mq, Tk] with
    /// Mq = 1 (one row for every query, `src_mask`) or Mq = Tq (`tgt_mask`); nil means no mask.
    /// Output [B, Tq, C], heads concatenated.
    public static func maskedMultiHeadAttention(q: FloatTensor, qOffset: Int = 0, qStride: Int? = nil,
                                                k: FloatTensor, kOffset: Int = 0, kStride: Int? = nil,
                                                v: FloatTensor, vOffset: Int = 0, vStride: Int? = nil,
                                                channels c: Int, heads: Int, mask: [Bool]?, maskRows: Int,
                                                scale: Float, fill: Float = -1e9) -> FloatTensor {
        let qs = qStride ?? q.shape.last ?? 0, ks = kStride ?? k.shape.last ?? 0, vs = vStride ?? v.shape.last ?? 0
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3 && q.shape[0] == k.shape[0] && k.shape[0] == v.shape[0]
                        && k.shape[1] == v.shape[1] && q.shape[2] == qs && k.shape[2] == ks && v.shape[2] == vs
                        && qOffset + c <= qs && kOffset + c <= ks && vOffset + c <= vs,
                     "maskedMultiHeadAttention: q \(q.shape), k \(k.shape), v \(v.shape), \(c) channels")
        precondition(heads > 0 && c % heads == 0, "maskedMultiHeadAttention: \(c) channels do not split into \(heads) heads")
        let (b, tq, tk) = (q.shape[0], q.shape[1], k.shape[1])
        if let mask {
            precondition((maskRows == 1 || maskRows == tq) && mask.count == b * maskRows * tk,
                         "maskedMultiHeadAttention: mask of \(mask.count) for [\(b), \(maskRows), \(tk)]")
        }
        let hd = c / heads
        return FloatTensor(shape: [b, tq, c]) { ob in
            guard b * tq * c > 0 else { return }
            if tk == 0 { ob.update(repeating: .nan); return }
            let out = SendablePointer(ob.baseAddress!)
            q.data.withUnsafeBufferPointer { qb in k.data.withUnsafeBufferPointer { kb in v.data.withUnsafeBufferPointer { vb in
                let qp = SendableConstPointer(qb.baseAddress! + qOffset), kp = SendableConstPointer(kb.baseAddress! + kOffset)
                let vp = SendableConstPointer(vb.baseAddress! + vOffset)
                withOptionalBools(mask) { mp in
                    Gemm.withSingleThreadedBLAS {
                        Parallel.forEachChunk(b * heads, costPerItem: 4 * tq * tk * hd) { pairs in
                            var scores = [Float](repeating: 0, count: tq * tk)
                            scores.withUnsafeMutableBufferPointer { sb in
                                let s = sb.baseAddress!
                                for pair in pairs {
                                    let bi = pair / heads, h = pair % heads
                                    Gemm.sgemm(transA: false, transB: true, m: tq, n: tk, k: hd, alpha: scale,
                                               a: qp.p + bi * tq * qs + h * hd, lda: qs, b: kp.p + bi * tk * ks + h * hd, ldb: ks,
                                               c: s, ldc: tk)
                                    for r in 0..<tq {
                                        let row = s + r * tk
                                        if let mp {
                                            let m = mp.p + (bi * maskRows + (maskRows == 1 ? 0 : r)) * tk
                                            for j in 0..<tk where !m[j] { row[j] = fill }
                                        }
                                        softmaxRow(row, tk)
                                    }
                                    Gemm.sgemm(m: tq, n: hd, k: tk, a: s, lda: tk, b: vp.p + bi * tk * vs + h * hd, ldb: vs,
                                               c: out.p + bi * tq * c + h * hd, ldc: c)
                                }
                            }
                        }
                    }
                }
            }}}
        }
    }

    static func withOptionalBools<R>(_ m: [Bool]?, _ body: (SendableConstPointer<Bool>?) -> R) -> R {
        guard let m else { return body(nil) }
        return m.withUnsafeBufferPointer { body($0.baseAddress.map(SendableConstPointer.init)) }
    }
}

import Foundation
