import TensorCore

/// One explicit layout or type change applied to a source tensor on its way to a model parameter.
/// Tables never guess a layout from a shape: every change is written out.
public enum Transform: Sendable, Equatable, CustomStringConvertible {
    /// Reorders dimensions: output dim d is input dim `perm[d]` (as `torch.permute`).
    case permute([Int])
    /// Swaps the last two dimensions (a 2-D matrix transpose).
    case transpose
    /// New shape with the same element count; one entry may be -1.
    case reshape([Int])
    /// Merges dims `start...end` into one (as `torch.flatten(start, end)`).
    case flatten(Int, Int)
    /// Removes dim `d`, which must have size 1.
    case squeeze(Int)
    /// Inserts a dim of size 1 at `d`.
    case unsqueeze(Int)
    /// Converts the element type.
    case cast(DType)

    public var description: String {
        switch self {
        case .permute(let p): return "permute \(p)"
        case .transpose: return "transpose"
        case .reshape(let s): return "reshape \(s)"
        case .flatten(let a, let b): return "flatten [\(a), \(b)]"
        case .squeeze(let d): return "squeeze \(d)"
        case .unsqueeze(let d): return "unsqueeze \(d)"
        case .cast(let t): return "cast \(t.rawValue)"
        }
    }

    /// The shape this transform produces from `shape`, or an error saying why it does not apply.
    public func outputShape(_ shape: [Int]) throws -> [Int] {
        func dim(_ d: Int, _ rank: Int) throws -> Int {
            let r = d < 0 ? d + rank : d
            guard r >= 0 && r < rank else { throw MappingError("\(self): dim \(d) is out of range for shape \(shape)") }
            return r
        }
        switch self {
        case .permute(let p):
            guard p.count == shape.count, Set(p) == Set(0..<shape.count) else {
                throw MappingError("\(self) does not fit shape \(shape)")
            }
            return p.map { shape[$0] }
        case .transpose:
            guard shape.count >= 2 else { throw MappingError("transpose needs at least 2 dims, got shape \(shape)") }
            var s = shape
            s.swapAt(s.count - 1, s.count - 2)
            return s
        case .reshape(let target):
            guard let n = ShapeMath.elementCount(shape) else { throw MappingError("bad shape \(shape)") }
            let unknown = target.filter { $0 == -1 }.count
            guard unknown <= 1, target.allSatisfy({ $0 >= -1 }) else { throw MappingError("\(self): at most one -1 and no other negative sizes") }
            let known = target.filter { $0 != -1 }.reduce(1, *)
            var out = target
            if unknown == 1 {
                guard known > 0, n % known == 0 else { throw MappingError("\(self) does not fit shape \(shape) (\(n) elements)") }
                out[target.firstIndex(of: -1)!] = n / known
            }
            guard ShapeMath.elementCount(out) == n else { throw MappingError("\(self) does not fit shape \(shape) (\(n) elements)") }
            return out
        case .flatten(let a, let b):
            let s = try dim(a, shape.count), e = try dim(b, shape.count)
            guard s <= e else { throw MappingError("\(self): start after end") }
            return Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...])
        case .squeeze(let d):
            let r = try dim(d, shape.count)
            guard shape[r] == 1 else { throw MappingError("\(self): dim \(d) has size \(shape[r]), not 1 (shape \(shape))") }
            var s = shape
            s.remove(at: r)
            return s
        case .unsqueeze(let d):
            let r = d < 0 ? d + shape.count + 1 : d
            guard r >= 0 && r <= shape.count else { throw MappingError("\(self): dim \(d) is out of range for shape \(shape)") }
            var s = shape
            s.insert(1, at: r)
            return s
        case .cast:
            return shape
        }
    }

    /// Applies the transform to `t`.
    public func apply(_ t: Tensor) throws -> Tensor {
        let shape = try outputShape(t.shape)
        switch self {
        case .reshape, .flatten, .squeeze, .unsqueeze:
            return t.reshaped(shape)
        case .cast(let target):
            return t.converted(to: target)
        case .transpose:
            var p = Array(0..<t.shape.count)
            p.swapAt(p.count - 1, p.count - 2)
            return TensorLayout.permute(t, p)
        case .permute(let p):
            return TensorLayout.permute(t, p)
        }
    }
}

/// Byte-level layout operations that work for every dtype.
public enum TensorLayout {
    /// `t.permute(perm).contiguous()`.
    public static func permute(_ t: Tensor, _ perm: [Int]) -> Tensor {
        let rank = t.shape.count
        if perm == Array(0..<rank) { return t }
        let outShape = perm.map { t.shape[$0] }
        let inStrides = ShapeMath.contiguousStrides(t.shape)
        let srcStrides = perm.map { inStrides[$0] }   // input stride of each output dim
        let es = t.dtype.byteSize
        let n = t.elementCount
        var out = [UInt8](repeating: 0, count: n * es)
        guard n > 0 else { return Tensor(dtype: t.dtype, shape: outShape, bytes: out) }
        t.bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                var index = [Int](repeating: 0, count: rank)
                var srcOffset = 0
                let inner = rank - 1
                let innerCount = outShape[inner], innerStride = srcStrides[inner]
                var o = 0
                while o < n {
                    // Copy one innermost row.
                    var s = srcOffset
                    for _ in 0..<innerCount {
                        (dst.baseAddress! + o * es).copyMemory(from: src.baseAddress! + s * es, byteCount: es)
                        o += 1
                        s += innerStride
                    }
                    // Advance the outer index (odometer).
                    var d = inner - 1
                    while d >= 0 {
                        index[d] += 1
                        srcOffset += srcStrides[d]
                        if index[d] < outShape[d] { break }
                        srcOffset -= srcStrides[d] * outShape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return Tensor(dtype: t.dtype, shape: outShape, bytes: out)
    }

    /// Concatenates tensors along `dim` (all other dims and the dtype must agree).
    public static func concat(_ ts: [Tensor], dim: Int) throws -> Tensor {
        guard let first = ts.first else { throw MappingError("concat of no tensors") }
        let rank = first.shape.count
        let d = dim < 0 ? dim + rank : dim
        guard d >= 0 && d < rank else { throw MappingError("concat: dim \(dim) is out of range for shape \(first.shape)") }
        for t in ts {
            guard t.dtype == first.dtype else { throw MappingError("concat: dtypes differ (\(first.dtype.rawValue) vs \(t.dtype.rawValue))") }
            guard t.shape.count == rank, (0..<rank).allSatisfy({ $0 == d || t.shape[$0] == first.shape[$0] }) else {
                throw MappingError("concat along dim \(dim): shapes \(ts.map(\.shape)) do not agree")
            }
        }
        let outer = first.shape[..<d].reduce(1, *)
        let innerElems = first.shape[(d + 1)...].reduce(1, *)
        var shape = first.shape
        shape[d] = ts.reduce(0) { $0 + $1.shape[d] }
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
        guard d >= 0 && d < rank else { throw MappingError("split: dim \(dim) is out of range for shape \(t.shape)") }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == t.shape[d] else {
            throw MappingError("split: sizes \(sizes) do not add up to dim \(dim) of shape \(t.shape)")
        }
        let outer = t.shape[..<d].reduce(1, *)
        let innerElems = t.shape[(d + 1)...].reduce(1, *)
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
