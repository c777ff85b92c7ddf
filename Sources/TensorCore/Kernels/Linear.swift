extension Kernels {
    /// `nn.Linear` forward: y = x · Wᵀ + b over the last dimension of x ([…, in] → […, out]); weight is [out, in].
    ///
    /// Optional fused epilogues, applied per column block right after its GEMM while the block is in cache:
    /// - `residual` (same shape as the output): y = residual + (x · Wᵀ + b), the transformer's skip connection,
    ///   rounded in the same order as PyTorch's `x + linear(h)`;
    /// - `activation`: y = f(x · Wᵀ + b) (applied after the residual when both are given).
    ///
    /// The output columns are split over the `Parallel` workers, each running a single-threaded GEMM on its block;
    /// the bias is written into the block first and accumulated by the GEMM (beta = 1).
    public static func linear(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor? = nil,
                              activation: VectorFunction? = nil, residual: FloatTensor? = nil) -> FloatTensor {
        precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        if let bias { precondition(bias.count == outF, "linear: bias \(bias.shape) for \(outF) outputs") }
        let rows = x.shape.dropLast().reduce(1, *)   // not x.count / inF: in = 0 still has rows
        var shape = x.shape
        shape[shape.count - 1] = outF
        if let residual { precondition(residual.shape == shape, "linear: residual \(residual.shape) for output \(shape)") }
        return FloatTensor(shape: shape) { (ob: UnsafeMutableBufferPointer<Float>) -> Void in
            guard rows > 0, outF > 0 else { return }
            let out = SendablePointer(ob.baseAddress!)
            withOptionalPointer(bias) { (bp: SendableConstPointer<Float>?) -> Void in
                withOptionalPointer(residual) { (rp: SendableConstPointer<Float>?) -> Void in
                    // C[:, cols] = bias[cols] before the GEMM adds x · Wᵀ (beta = 1).
                    let prepare: @Sendable (Range<Int>) -> Void = { cols in
                        for r in 0..<rows {
                            let dst = out.p + r * outF + cols.lowerBound
                            if let bp { dst.update(from: bp.p + cols.lowerBound, count: cols.count) }
                            else { dst.update(repeating: 0, count: cols.count) }
                        }
                    }
                    var finish: (@Sendable (Range<Int>) -> Void)? = nil
                    if rp != nil || activation != nil {
                        finish = { cols in
                            for r in 0..<rows {
                                let dst = out.p + r * outF + cols.lowerBound
                                if let rp { addRow(dst, rp.p + r * outF + cols.lowerBound, cols.count) }
                                activation?.apply(dst, cols.count)
                            }
                        }
                    }
                    if inF == 0 {
                        prepare(0..<outF)
                        finish?(0..<outF)
                        return
                    }
                    x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
                        Gemm.sgemmColumnBlocks(transB: true, m: rows, n: outF, k: inF,
                                               a: xb.baseAddress!, lda: inF, b: wb.baseAddress!, ldb: inF,
                                               beta: bp != nil ? 1 : 0, c: out.p, ldc: outF,
                                               prepare: bp != nil ? prepare : nil, finish: finish)
                    }}
                }
            }
        }
    }

    /// dst[0..<n] += src[0..<n], 8 lanes at a time.
    @inline(__always)
    static func addRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
        var i = 0
        while i + 8 <= n {
            let v = d.loadUnaligned(fromByteOffset: i * 4, as: FastMath.V.self) + s.loadUnaligned(fromByteOffset: i * 4, as: FastMath.V.self)
            d.storeBytes(of: v, toByteOffset: i * 4, as: FastMath.V.self)
            i += 8
        }
        while i < n { dst[i] += src[i]; i += 1 }
    }

    /// Calls `body` with a sendable pointer to `t`'s elements, or nil when `t` is nil or empty.
    static func withOptionalPointer<R>(_ t: FloatTensor?, _ body: (SendableConstPointer<Float>?) -> R) -> R {
        guard let t else { return body(nil) }
        return t.data.withUnsafeBufferPointer { b in body(b.baseAddress.map(SendableConstPointer.init)) }
    }
}
