extension Kernels {
    /// NumPy/PyTorch broadcast of two shapes, or nil when they are incompatible.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Element-wise a + b with broadcasting.
    public static func add(_ a: FloatTensor, _ b: FloatTensor) -> FloatTensor { broadcast(a, b, "add") { $0 + $1 } }

    /// Element-wise a · b with broadcasting.
    public static func mul(_ a: FloatTensor, _ b: FloatTensor) -> FloatTensor { broadcast(a, b, "mul") { $0 * $1 } }

    /// Applies `f` with broadcasting. Dimensions are coalesced so the inner loop runs over the longest run
    /// where each operand is either contiguous (stride 1) or constant (stride 0).
    @inlinable
    static func broadcast(_ a: FloatTensor, _ b: FloatTensor, _ name: String,
                          _ f: @escaping @Sendable (Float, Float) -> Float) -> FloatTensor {
        guard let shape = broadcastShape(a.shape, b.shape) else {
            preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let r = shape.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: r - s.count) + s
            let cs = ShapeMath.contiguousStrides(padded)
            return (0..<r).map { padded[$0] == 1 ? 0 : cs[$0] }
        }
        // Coalesce dimensions: merge i into i+1 when both operands step consistently.
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        let fa = strides(a.shape), fb = strides(b.shape)
        for i in 0..<r where shape[i] != 1 {
            if let last = dims.last,
               sa.last! == fa[i] * shape[i], sb.last! == fb[i] * shape[i] {
                dims[dims.count - 1] = last * shape[i]
                sa[sa.count - 1] = fa[i]; sb[sb.count - 1] = fb[i]
            } else {
                dims.append(shape[i]); sa.append(fa[i]); sb.append(fb[i])
            }
        }
        let inner = dims.last ?? 1, ia = sa.last ?? 0, ib = sb.last ?? 0
        let outerDims = Array(dims.dropLast()), outerA = Array(sa.dropLast()), outerB = Array(sb.dropLast())
        let count = ShapeMath.elementCount(shape) ?? 0
        let rows = inner == 0 ? 0 : count / inner
        return FloatTensor(shape: shape) { ob in
            guard count > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            a.data.withUnsafeBufferPointer { ab in b.data.withUnsafeBufferPointer { bb in
                let ap = SendableConstPointer(ab.baseAddress!), bp = SendableConstPointer(bb.baseAddress!)
                Parallel.forEachChunk(rows, costPerItem: inner) { range in
                    for row in range {
                        var rem = row, offA = 0, offB = 0
                        for d in stride(from: outerDims.count - 1, through: 0, by: -1) {
                            let idx = rem % outerDims[d]; rem /= outerDims[d]
                            offA += idx * outerA[d]; offB += idx * outerB[d]
                        }
                        let pa = ap.p + offA, pb = bp.p + offB, po = o.p + row * inner
                        switch (ia, ib) {
                        case (1, 1): for i in 0..<inner { po[i] = f(pa[i], pb[i]) }
                        case (1, 0): let v = pb[0]; for i in 0..<inner { po[i] = f(pa[i], v) }
                        case (0, 1): let v = pa[0]; for i in 0..<inner { po[i] = f(v, pb[i]) }
                        default: for i in 0..<inner { po[i] = f(pa[i * ia], pb[i * ib]) }
                        }
                    }
                }
            }}
        }
    }

    /// In-place a += b for equal shapes (residual connections).
    public static func addInPlace(_ a: inout FloatTensor, _ b: FloatTensor) {
        precondition(a.shape == b.shape, "addInPlace: shapes \(a.shape) and \(b.shape) differ")
        let n = a.count
        a.data.withUnsafeMutableBufferPointer { ab in b.data.withUnsafeBufferPointer { bb in
            guard n > 0 else { return }
            let ap = SendablePointer(ab.baseAddress!), bp = SendableConstPointer(bb.baseAddress!)
            Parallel.forEachChunk(n) { range in for i in range { ap.p[i] += bp.p[i] } }
        }}
    }

    /// `torch.cat(tensors, dim)`: all shapes equal except along `dim`.
    public static func concat(_ tensors: [FloatTensor], dim: Int) -> FloatTensor {
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0].shape
        precondition(dim >= 0 && dim < first.count, "concat: dim \(dim) out of range for \(first)")
        var shape = first
        shape[dim] = 0
        for t in tensors {
            precondition(t.rank == first.count && (0..<first.count).allSatisfy { $0 == dim || t.shape[$0] == first[$0] },
                         "concat: shape \(t.shape) does not match \(first) outside dim \(dim)")
            shape[dim] += t.shape[dim]
        }
        let outer = first[..<dim].reduce(1, *)
        let innerUnit = first[(dim + 1)...].reduce(1, *)
        let outRow = shape[dim] * innerUnit
        return FloatTensor(shape: shape) { ob in
            var offset = 0
            for t in tensors {
                let chunk = t.shape[dim] * innerUnit
                t.data.withUnsafeBufferPointer { tb in
                    guard chunk > 0 else { return }
                    for o in 0..<outer { (ob.baseAddress! + o * outRow + offset).update(from: tb.baseAddress! + o * chunk, count: chunk) }
                }
                offset += chunk
            }
        }
    }

    /// `torch.mean(x, dim=1, keepdim=True)` for [N, C, …].
    public static func meanOverChannels(_ x: FloatTensor) -> FloatTensor { reduceChannels(x, mean: true) }

    /// `torch.max(x, dim=1, keepdim=True).values` for [N, C, …].
    public static func maxOverChannels(_ x: FloatTensor) -> FloatTensor { reduceChannels(x, mean: false) }

    static func reduceChannels(_ x: FloatTensor, mean: Bool) -> FloatTensor {
        precondition(x.rank >= 2 && x.shape[1] > 0, "channel reduction: expects [N, C, …] with C > 0, got \(x.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let spatial = x.shape.dropFirst(2).reduce(1, *)
        var shape = x.shape
        shape[1] = 1
        return FloatTensor(shape: shape) { ob in
            guard n * spatial > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                // Parallel over (image, spatial chunk); the channel loop streams whole planes.
                Parallel.forEachChunk(n * spatial, costPerItem: c) { range in
                    var i = range.lowerBound
                    while i < range.upperBound {
                        let img = i / spatial, s0 = i % spatial
                        let s1 = Swift.min(spatial, s0 + (range.upperBound - i))
                        let dst = o.p + img * spatial
                        let src = xp.p + img * c * spatial
                        for s in s0..<s1 { dst[s] = src[s] }
                        for ch in 1..<c {
                            let plane = src + ch * spatial
                            if mean { for s in s0..<s1 { dst[s] += plane[s] } }
                            else { for s in s0..<s1 { let v = plane[s]; if v > dst[s] || v.isNaN { dst[s] = v } } }
                        }
                        if mean { let inv = Float(c); for s in s0..<s1 { dst[s] /= inv } }
                        i += s1 - s0
                    }
                }
            }
        }
    }
}
