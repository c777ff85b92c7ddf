import CKernels

extension Kernels {
    /// Applies a scalar `f` to every element, in parallel chunks. `cost` is a rough per-element flop count.
    @inlinable
    static func map(_ x: FloatTensor, cost: Int, _ f: @escaping @Sendable (Float) -> Float) -> FloatTensor {
        FloatTensor(shape: x.shape) { ob in
            x.data.withUnsafeBufferPointer { xb in
                guard let src = xb.baseAddress, let dst = ob.baseAddress else { return }
                let xp = SendableConstPointer(src), o = SendablePointer(dst)
                Parallel.forEachChunk(x.count, costPerItem: cost) { range in
                    for i in range { o.p[i] = f(xp.p[i]) }
                }
            }
        }
    }

    /// max(x, 0); NaN stays NaN as in PyTorch.
    public static func relu(_ x: FloatTensor) -> FloatTensor { map(x, cost: 1) { $0 > 0 || $0.isNaN ? $0 : 0 } }

    /// Element-wise functions evaluated with `FastMath`, 8 lanes at a time, in parallel chunks.
    public enum VectorFunction: Sendable {
        case gelu, tanh, sigmoid, silu, exp

        @inline(__always)
        func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
            switch self {
            case .gelu:
                // AVX2 + FMA: the same approximation in C, 8 lanes per instruction (the Swift SIMD8 code runs as two
                // SSE halves on baseline x86-64); GELU was ~3 % of a ViT forward at batch 8.
                if FastMath.avx2Kernels { weights_gelu_avx2(p, n) } else { FastMath.apply(p, n, FastMath.gelu) }
            case .tanh: FastMath.apply(p, n, FastMath.tanh)
            case .sigmoid: FastMath.apply(p, n, FastMath.sigmoid)
            case .silu: FastMath.apply(p, n, FastMath.silu)
            case .exp: FastMath.apply(p, n, FastMath.exp)
            }
        }
    }

    /// Applies `f` to every element of `x` in place.
    public static func applyInPlace(_ f: VectorFunction, _ x: inout FloatTensor) {
        let n = x.count
        x.data.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress else { return }
            let p = SendablePointer(base)
            // Chunks are multiples of 8 so only the last one has a tail.
            Parallel.forEachChunk((n + 7) / 8, costPerItem: 8 * 20) { range in
                let lo = range.lowerBound * 8, hi = Swift.min(n, range.upperBound * 8)
                f.apply(p.p + lo, hi - lo)
            }
        }
    }

    /// PyTorch's `nn.GELU()` default (exact): 0.5 · x · (1 + erf(x / √2)).
    public static func gelu(_ x: FloatTensor) -> FloatTensor {
        var y = x
        applyInPlace(.gelu, &y)
        return y
    }

    public static func geluInPlace(_ x: inout FloatTensor) { applyInPlace(.gelu, &x) }

    public static func tanh(_ x: FloatTensor) -> FloatTensor {
        var y = x
        applyInPlace(.tanh, &y)
        return y
    }

    /// 1 / (1 + e^−x).
    public static func sigmoid(_ x: FloatTensor) -> FloatTensor {
        var y = x
        applyInPlace(.sigmoid, &y)
        return y
    }

    /// `nn.SiLU`: x · σ(x).
    public static func silu(_ x: FloatTensor) -> FloatTensor {
        var y = x
        applyInPlace(.silu, &y)
        return y
    }

    /// Softmax over the last dimension, numerically stable (subtracts the row maximum).
    public static func softmax(_ x: FloatTensor) -> FloatTensor {
        var y = x
        let d = x.shape.last ?? 0
        if d == 0 { return y }
        y.data.withUnsafeMutableBufferPointer { b in softmaxRows(b.baseAddress!, rows: x.count / d, cols: d, stride: d) }
        return y
    }

    /// In-place row softmax over `rows` rows of `cols` values spaced `stride` apart. Parallel over rows.
    static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int) {
        let base = SendablePointer(p)
        Parallel.forEachChunk(rows, costPerItem: 8 * cols) { range in
            for r in range { softmaxRow(base.p + r * stride, cols) }
        }
    }

    /// Softmax of one contiguous row in place: vectorised max, exp(x − max) with the running sum, then scaling.
    @inlinable
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        if FastMath.avx2Kernels { weights_softmax_row_avx2(row, n); return }   // the same in AVX2 C
        softmaxRowSwift(row, n)
    }

    /// `softmaxRow` in Swift SIMD8 (every CPU; the reference for the AVX2 version).
    @inlinable
    static func softmaxRowSwift(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        typealias V = FastMath.V
        let raw = UnsafeMutableRawPointer(row)
        let body = n & ~7
        var mv = V(repeating: -.infinity)
        var i = 0
        while i < body {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            mv = mv.replacing(with: v, where: mv .< v)
            i += 8
        }
        var m = mv.max()
        for j in body..<n { m = Swift.max(m, row[j]) }
        if m == -.infinity { m = 0 }  // all −inf: produce NaN like PyTorch via 0/0 below
        let mb = V(repeating: m)
        var sv = V(repeating: 0)
        i = 0
        while i < body {
            let e = FastMath.expUpTo88(raw.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mb)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: V.self)
            sv += e
            i += 8
        }
        if body < n {
            // Tail through a vector padded with −inf (exp gives 0 there).
            var t = V(repeating: -.infinity)
            for j in body..<n { t[j - body] = row[j] }
            let e = FastMath.expUpTo88(t - mb)
            for j in body..<n { row[j] = e[j - body] }
            sv += e
        }
        let inv = V(repeating: 1 / sv.sum())
        i = 0
        while i < body {
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: i * 4, as: V.self) * inv, toByteOffset: i * 4, as: V.self)
            i += 8
        }
        for j in body..<n { row[j] *= inv[0] }
    }
}
