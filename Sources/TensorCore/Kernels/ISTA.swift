/// CRATE's ISTA feed-forward step (Ma-Lab-Berkeley/CRATE `model/crate.py`, `FeedForward`): one proximal-gradient
/// step of sparse coding against the dictionary D (the layer's `weight`, [dim, dim]):
///   relu(x + (η·(x·D − (x·Dᵀ)·D) − η·λ))
/// The reference computes x·D and (x·Dᵀ)·D as two products and subtracts them; here the difference is one GEMM on
/// (x − x·Dᵀ) — the same value up to float rounding, one GEMM fewer.
extension Kernels {
    public static func istaStep(_ x: FloatTensor, dictionary d: FloatTensor, stepSize: Float, lambda: Float) -> FloatTensor {
        let dim = d.shape.first ?? 0
        precondition(d.rank == 2 && d.shape[1] == dim && x.shape.last == dim,
                     "istaStep: input \(x.shape), dictionary \(d.shape) (must be [dim, dim] with dim the input's last size)")
        let rows = x.shape.dropLast().reduce(1, *)
        // r = x − x·Dᵀ (the residual of the reconstruction), then out = relu(x + η·(r·D) − η·λ).
        var r = x
        let shift = stepSize * lambda
        return FloatTensor(shape: x.shape) { ob in
            guard rows > 0, dim > 0 else { return }
            x.data.withUnsafeBufferPointer { xb in d.data.withUnsafeBufferPointer { db in
                r.data.withUnsafeMutableBufferPointer { rb in
                    Gemm.sgemm(transB: true, m: rows, n: dim, k: dim, alpha: -1, a: xb.baseAddress!, lda: dim,
                               b: db.baseAddress!, ldb: dim, beta: 1, c: rb.baseAddress!, ldc: dim)
                    Gemm.sgemm(m: rows, n: dim, k: dim, a: rb.baseAddress!, lda: dim, b: db.baseAddress!, ldb: dim,
                               beta: 0, c: ob.baseAddress!, ldc: dim)
                }
                let o = SendablePointer(ob.baseAddress!), xp = SendableConstPointer(xb.baseAddress!)
                Parallel.forEachChunk(rows, costPerItem: dim) { range in
                    for i in range.lowerBound * dim..<range.upperBound * dim {
                        let v = xp.p[i] + (stepSize * o.p[i] - shift)
                        o.p[i] = v > 0 || v.isNaN ? v : 0
                    }
                }
            }}
        }
    }
}
