extension Kernels {
    /// Swaps the last two dimensions: […, A, B] → […, B, A] (e.g. a patch embedding's [N, C, P] → [N, P, C]).
    public static func transposeLastTwo(_ x: FloatTensor) -> FloatTensor {
        precondition(x.rank >= 2, "transposeLastTwo: needs rank ≥ 2, got \(x.shape)")
        let a = x.shape[x.rank - 2], b = x.shape[x.rank - 1]
        let batch = a * b == 0 ? 0 : x.count / (a * b)
        var shape = x.shape
        shape.swapAt(x.rank - 2, x.rank - 1)
        return FloatTensor(shape: shape) { ob in
            guard batch > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                Parallel.forEachChunk(batch * b, costPerItem: a) { range in
                    for r in range {   // output row r = (batch index, column j of the input)
                        let n = r / b, j = r % b
                        let src = xp.p + n * a * b + j, dst = o.p + r * a
                        for i in 0..<a { dst[i] = src[i * b] }
                    }
                }
            }
        }
    }

    /// Rows `index` of dimension 1: [N, T, D] → [N, D] (e.g. the class token).
    public static func selectToken(_ x: FloatTensor, index: Int) -> FloatTensor {
        precondition(x.rank == 3 && index >= 0 && index < x.shape[1], "selectToken: \(index) out of range for \(x.shape)")
        let (n, t, d) = (x.shape[0], x.shape[1], x.shape[2])
        return FloatTensor(shape: [n, d]) { ob in
            x.data.withUnsafeBufferPointer { xb in
                for i in 0..<n { (ob.baseAddress! + i * d).update(from: xb.baseAddress! + (i * t + index) * d, count: d) }
            }
        }
    }
}
