extension Kernels {
    /// `nn.Linear` forward: y = x · Wᵀ + b over the last dimension of x ([…, in] → […, out]); weight is [out, in].
    ///
    /// Optional fused epilogues, applied per column block right after its GEMM while the block is in cache:
    /// - `residual` (same shape as the output): y = residual + (x · Wᵀ + b), the transformer's skip connection,
    ///   rounded in the same order as PyTorch's `x + linear(h)`;
    /// - `activation`: y = f(x · Wᵀ + b) (applied after the residual when both are given).
    ///
    /// The output columns are split over the `Parallel` workers, each running a single-threaded GEMM on its block;
    /// the bias is written into the block first and accumulated by the GEMM (beta = 1). Inputs of at most
    /// `shortInputRows` rows take `linearShortInput` instead.
    ///
    /// `packed`: the layer's cache of its weight packed for the packed kernels (`linearPacked`), filled on first use;
    /// the layer must replace it whenever `weight` changes. With it, and when `Gemm.usePackedKernel` (the CPU has
    /// AVX-512F, or AVX2 + FMA), the product runs on that kernel instead of OpenBLAS: faster for a ViT's layers,
    /// because the weight is not repacked on every call. Without it, or on other CPUs, nothing changes.
    public static func linear(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor? = nil,
                              activation: VectorFunction? = nil, residual: FloatTensor? = nil,
                              packed: DerivedCache<PackedLinearWeight>? = nil) -> FloatTensor {
        precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        if let bias { precondition(bias.count == outF, "linear: bias \(bias.shape) for \(outF) outputs") }
        let rows = x.shape.dropLast().reduce(1, *)   // not x.count / inF: in = 0 still has rows
        var shape = x.shape
        shape[shape.count - 1] = outF
        if let residual { precondition(residual.shape == shape, "linear: residual \(residual.shape) for output \(shape)") }
        if let packed, rows > 0 && inF > 0 && outF > 0 && Gemm.usePackedKernel {
            let w = packed.get { PackedLinearWeight(weight) }
            precondition(w.outFeatures == outF && w.inFeatures == inF,
                         "linear: packed weight [\(w.outFeatures), \(w.inFeatures)] for weight \(weight.shape)")
            return linearPacked(x, weight: w, bias: bias, activation: activation, residual: residual, rows: rows, shape: shape)
        }
        if rows > 0 && rows <= shortInputRows && inF > 0 && outF > 0 {
            return linearShortInput(x, weight: weight, bias: bias, activation: activation, residual: residual,
                                    rows: rows, shape: shape)
        }
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

    /// Row count up to which `linear` computes the transposed product (`linearShortInput`).
    public static let shortInputRows = 128

    /// `linear` for a short input (a few tokens, e.g. 64 patches of one image): computes Yᵀ = W · Xᵀ, the weight as
    /// OpenBLAS's untransposed left operand, then transposes each block back while adding bias and residual and
    /// applying the activation. For X of up to ~160 rows against a weight of 1024 or more inputs this ran 5–15 %
    /// faster than X · Wᵀ (OpenBLAS 0.3.21, Zen 4): that form packs the whole weight through its slow transposing
    /// copy, and a short X leaves too few multiply-adds per packed weight element to hide it.
    /// The output features are split over the `Parallel` workers; each GEMMs its rows of W into a scratch
    /// [features, rows] block and writes its columns of Y.
    static func linearShortInput(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor?, activation: VectorFunction?,
                                 residual: FloatTensor?, rows: Int, shape: [Int]) -> FloatTensor {
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        return FloatTensor(shape: shape) { (ob: UnsafeMutableBufferPointer<Float>) -> Void in
            let out = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
                let xp = SendableConstPointer(xb.baseAddress!), wp = SendableConstPointer(wb.baseAddress!)
                withOptionalPointer(bias) { bp in withOptionalPointer(residual) { rp in
                    Gemm.forEachBlock(of: outF, work: rows &* outF &* inF, minimumWork: Gemm.parallelThreshold) { cols in
                        let n = cols.count, j0 = cols.lowerBound
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n * rows)
                        defer { scratch.deallocate() }
                        // scratch [n, rows] = W[cols, :] · Xᵀ
                        Gemm.sgemm(transA: false, transB: true, m: n, n: rows, k: inF, a: wp.p + j0 * inF, lda: inF,
                                   b: xp.p, ldb: inF, c: scratch, ldc: rows)
                        transposeAddingBias(scratch, rows: rows, features: n, bias: bp.map { $0.p + j0 },
                                            into: out.p + j0, ldo: outF)
                        if rp != nil || activation != nil {
                            for r in 0..<rows {
                                let dst = out.p + r * outF + j0
                                if let rp { addRow(dst, rp.p + r * outF + j0, n) }
                                activation?.apply(dst, n)
                            }
                        }
                    }
                }}
            }}
        }
    }

    /// out[r · ldo + f] = src[f · rows + r] + bias[f] for r < rows, f < features: a [features, rows] block
    /// transposed into rows of `out`, in 4 × 4 tiles (four feature rows loaded as vectors of four tokens, shuffled
    /// into four token rows of four features). The tiles run along the output rows, so each pass writes four rows
    /// contiguously (column-wise passes would hit one L1 set over and over when the row stride is a multiple of 4 KiB).
    static func transposeAddingBias(_ src: UnsafePointer<Float>, rows: Int, features: Int, bias: UnsafePointer<Float>?,
                                    into out: UnsafeMutablePointer<Float>, ldo: Int) {
        typealias V4 = SIMD4<Float>
        let s = UnsafeRawPointer(src), o = UnsafeMutableRawPointer(out)
        let rows4 = rows & ~3, feats4 = features & ~3
        @inline(__always) func b4(_ f: Int) -> V4 {
            guard let bias else { return V4() }
            return UnsafeRawPointer(bias).loadUnaligned(fromByteOffset: f * 4, as: V4.self)
        }
        var r = 0
        while r < rows4 {
            var f = 0
            while f < feats4 {
                let b = b4(f)
                let a0 = s.loadUnaligned(fromByteOffset: (f * rows + r) * 4, as: V4.self)
                let a1 = s.loadUnaligned(fromByteOffset: ((f + 1) * rows + r) * 4, as: V4.self)
                let a2 = s.loadUnaligned(fromByteOffset: ((f + 2) * rows + r) * 4, as: V4.self)
                let a3 = s.loadUnaligned(fromByteOffset: ((f + 3) * rows + r) * 4, as: V4.self)
                o.storeBytes(of: V4(a0[0], a1[0], a2[0], a3[0]) + b, toByteOffset: (r * ldo + f) * 4, as: V4.self)
                o.storeBytes(of: V4(a0[1], a1[1], a2[1], a3[1]) + b, toByteOffset: ((r + 1) * ldo + f) * 4, as: V4.self)
                o.storeBytes(of: V4(a0[2], a1[2], a2[2], a3[2]) + b, toByteOffset: ((r + 2) * ldo + f) * 4, as: V4.self)
                o.storeBytes(of: V4(a0[3], a1[3], a2[3], a3[3]) + b, toByteOffset: ((r + 3) * ldo + f) * 4, as: V4.self)
                f += 4
            }
            r += 4
        }
        // Ragged edges: the last rows % 4 rows, the last features % 4 columns.
        for r in 0..<rows {
            for f in (r < rows4 ? feats4 : 0)..<features { out[r * ldo + f] = src[f * rows + r] + (bias?[f] ?? 0) }
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
