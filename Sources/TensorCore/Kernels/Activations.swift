import Foundation

extension Kernels {
    /// Applies `f` to every element, in parallel chunks. `cost` is a rough per-element flop count.
    @inlinable
    static func map(_ x: FloatTensor, cost: Int, _ f: @escaping @Sendable (Float) -> Float) -> FloatTensor {
        FloatTensor(shape: x.shape) { ob in
            let o = SendablePointer(ob.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!)
            x.data.withUnsafeBufferPointer { xb in
                guard let base = xb.baseAddress else { return }
                let xp = SendableConstPointer(base)
                Parallel.forEachChunk(x.count, costPerItem: cost) { range in
                    for i in range { o.p[i] = f(xp.p[i]) }
                }
            }
        }
    }

    /// In-place form of `map` (avoids an allocation when the caller owns the tensor).
    @inlinable
    static func mapInPlace(_ x: inout FloatTensor, cost: Int, _ f: @escaping @Sendable (Float) -> Float) {
        let n = x.count
        x.data.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress else { return }
            let p = SendablePointer(base)
            Parallel.forEachChunk(n, costPerItem: cost) { range in
                for i in range { p.p[i] = f(p.p[i]) }
            }
        }
    }

    /// max(x, 0); NaN stays NaN as in PyTorch.
    public static func relu(_ x: FloatTensor) -> FloatTensor { map(x, cost: 1) { $0 > 0 || $0.isNaN ? $0 : 0 } }

    /// PyTorch's `nn.GELU()` default (exact): 0.5 · x · (1 + erf(x / √2)).
    public static func gelu(_ x: FloatTensor) -> FloatTensor {
        var y = x
        geluInPlace(&y)
        return y
    }

    public static func geluInPlace(_ x: inout FloatTensor) {
        mapInPlace(&x, cost: 20) { v in 0.5 * v * (1 + Foundation.erf(v * Float(0.7071067811865476))) }
    }

    public static func tanh(_ x: FloatTensor) -> FloatTensor { map(x, cost: 20) { Foundation.tanh($0) } }

    /// 1 / (1 + e^−x).
    public static func sigmoid(_ x: FloatTensor) -> FloatTensor { map(x, cost: 20) { sigmoidScalar($0) } }

    @inlinable
    public static func sigmoidScalar(_ v: Float) -> Float {
        // Split by sign so exp never overflows to inf/inf.
        if v >= 0 { return 1 / (1 + Foundation.exp(-v)) }
        let e = Foundation.exp(v)
        return e / (1 + e)
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
        Parallel.forEachChunk(rows, costPerItem: 24 * cols) { range in
            for r in range { softmaxRow(base.p + r * stride, cols) }
        }
    }

    @inlinable
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = Swift.max(m, row[i]) }
        if m == -.infinity { m = 0 }  // all −inf: produce NaN like PyTorch via 0/0 below
        var sum: Float = 0
        for i in 0..<n { let e = Foundation.exp(row[i] - m); row[i] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<n { row[i] *= inv }
    }
}
