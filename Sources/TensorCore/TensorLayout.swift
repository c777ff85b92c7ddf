/// A shape problem in a layout operation (mismatched concat inputs, split sizes that do not add up).
package struct LayoutError: WeightsError {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Byte-level layout operations that work for every dtype.
package enum TensorLayout {
    /// `t.permute(perm).contiguous()`: output dim d is input dim `perm[d]`. `perm` must be a permutation of
    /// `0..<rank` (callers validate it).
    /// Packed sub-byte dtypes cannot be permuted (callers check `dtype.isPacked`).
    public static func permute(_ t: Tensor, _ perm: [Int]) -> Tensor {
        let rank = t.shape.count
        if perm == Array(0..<rank) { return t }
        precondition(!t.dtype.isPacked, "permute of a packed \(t.dtype.rawValue) tensor")
        let outShape = perm.map { t.shape[$0] }
        let inStrides = ShapeMath.contiguousStrides(t.shape)
        let srcStrides = perm.map { inStrides[$0] }   // input stride of each output dim
        let n = t.elementCount
        let out: [UInt8]
        switch t.dtype.byteSize {
        case 1: out = gather(t.bytes, UInt8.self, outShape, srcStrides, n)
        case 2: out = gather(t.bytes, UInt16.self, outShape, srcStrides, n)
        case 4: out = gather(t.bytes, UInt32.self, outShape, srcStrides, n)
        case 8: out = gather(t.bytes, UInt64.self, outShape, srcStrides, n)
        default: out = gather(t.bytes, SIMD2<UInt64>.self, outShape, srcStrides, n)  // complex128
        }
        return Tensor(dtype: t.dtype, shape: outShape, bytes: out)
    }

    /// Reads `n` elements of `T` in row-major order of `shape`, element (i0, i1, …) from Σ i_d·strides[d].
    static func gather<T>(_ bytes: [UInt8], _: T.Type, _ shape: [Int], _ strides: [Int], _ n: Int) -> [UInt8] {
        let rank = shape.count
        var out = [UInt8](repeating: 0, count: n * MemoryLayout<T>.size)
        guard n > 0 else { return out }
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                let sp = src.bindMemory(to: T.self), dp = dst.bindMemory(to: T.self)
                var index = [Int](repeating: 0, count: rank)
                var srcOffset = 0
                let inner = rank - 1
                let innerCount = shape[inner], innerStride = strides[inner]
                var o = 0
                while o < n {
                    // Copy one innermost row.
                    var s = srcOffset
                    for _ in 0..<innerCount {
                        dp[o] = sp[s]
                        o += 1
                        s += innerStride
                    }
                    // Advance the outer index (odometer).
                    var d = inner - 1
                    while d >= 0 {
                        index[d] += 1
                        srcOffset += strides[d]
                        if index[d] < shape[d] { break }
                        srcOffset -= strides[d] * shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return out
    }

    /// Column-major (Fortran-order) element data of `shape` reordered into row-major (C) order.
    public static func fortranToC(_ t: Tensor) -> Tensor {
        let rank = t.shape.count
        guard rank > 1 else { return t }
        // Fortran data of shape S is C data of shape reversed(S); reversing the axes back gives C order of S.
        return permute(Tensor(dtype: t.dtype, shape: t.shape.reversed(), bytes: t.bytes), Array((0..<rank).reversed()))
    }

    /// Concatenates tensors along `dim` (all other dims and the dtype must agree).
    public static func concat(_ ts: [Tensor], dim: Int) throws -> Tensor {
        guard let first = ts.first else { throw LayoutError("concat of no tensors") }
        guard !first.dtype.isPacked else { throw LayoutError("concat: packed \(first.dtype.rawValue) tensors cannot be re-laid out") }
        let rank = first.shape.count
        let d = dim < 0 ? dim + rank : dim
        guard d >= 0 && d < rank else { throw LayoutError("concat: dim \(dim) is out of range for shape \(first.shape)") }
        for t in ts {
            guard t.dtype == first.dtype else { throw LayoutError("concat: dtypes differ (\(first.dtype.rawValue) vs \(t.dtype.rawValue))") }
            guard t.shape.count == rank, (0..<rank).allSatisfy({ $0 == d || t.shape[$0] == first.shape[$0] }) else {
                throw LayoutError("concat along dim \(dim): shapes \(ts.map(\.shape)) do not agree")
            }
        }
        var shape = first.shape
        guard let joined = ShapeMath.sum(ts.map { $0.shape[d] }) else { throw LayoutError("concat along dim \(dim): sizes overflow") }
        shape[d] = joined
        guard let outer = ShapeMath.product(first.shape[..<d]), let innerElems = ShapeMath.product(first.shape[(d + 1)...]),
              ShapeMath.product(shape) != nil, ShapeMath.byteCount(shape, first.dtype) != nil else {
            throw LayoutError("concat along dim \(dim): shape \(shape) holds more elements than fit in 64 bits")
        }
        var out: [UInt8] = []
        out.reserveCapacity((ShapeMath.byteCount(shape, first.dtype) ?? 0))
        let es = first.dtype.byteSize
        for o in 0..<outer {
            for t in ts {
                let chunk = t.shape[d] * innerElems * es
                out.append(contentsOf: t.bytes[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        return Tensor(dtype: first.dtype, shape: shape, bytes: out)
    }

    /// Splits `t` along `dim` into pieces of the given sizes (which must sum to the dim's size).
    public static func split(_ t: Tensor, dim: Int, sizes: [Int]) throws -> [Tensor] {
        let rank = t.shape.count
        let d = dim < 0 ? dim + rank : dim
        guard !t.dtype.isPacked else { throw LayoutError("split: a packed \(t.dtype.rawValue) tensor cannot be re-laid out") }
        guard d >= 0 && d < rank else { throw LayoutError("split: dim \(dim) is out of range for shape \(t.shape)") }
        guard sizes.allSatisfy({ $0 >= 0 }), ShapeMath.sum(sizes) == t.shape[d] else {
            throw LayoutError("split: sizes \(sizes) do not add up to dim \(dim) of shape \(t.shape)")
        }
        guard let outer = ShapeMath.product(t.shape[..<d]), let innerElems = ShapeMath.product(t.shape[(d + 1)...]),
              ShapeMath.product(t.shape) != nil, ShapeMath.byteCount(t.shape, t.dtype) != nil else {
            throw LayoutError("split: shape \(t.shape) holds more elements than fit in 64 bits")
        }
        let es = t.dtype.byteSize
        let row = t.shape[d] * innerElems * es
        var start = 0
        var pieces: [Tensor] = []
        for size in sizes {
            var shape = t.shape
            shape[d] = size
            var bytes: [UInt8] = []
            bytes.reserveCapacity(outer * size * innerElems * es)
            for o in 0..<outer {
                let base = o * row + start * innerElems * es
                bytes.append(contentsOf: t.bytes[base..<(base + size * innerElems * es)])
            }
            pieces.append(Tensor(dtype: t.dtype, shape: shape, bytes: bytes))
            start += size
        }
        return pieces
    }
}
