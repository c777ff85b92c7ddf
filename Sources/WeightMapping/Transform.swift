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
        // Every intermediate size must be representable (the checked products below rely on it).
        guard ShapeMath.product(shape) != nil else { throw MappingError("shape \(shape) holds more elements than fit in 64 bits") }
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
            guard let known = ShapeMath.product(target.filter { $0 != -1 }) else { throw MappingError("\(self): target size overflows") }
            var out = target
            if unknown == 1, let i = target.firstIndex(of: -1) {
                guard known > 0, n % known == 0 else { throw MappingError("\(self) does not fit shape \(shape) (\(n) elements)") }
                out[i] = n / known
            }
            guard ShapeMath.product(out) != nil else { throw MappingError("\(self): the size of shape \(out) overflows") }
            guard ShapeMath.elementCount(out) == n else { throw MappingError("\(self) does not fit shape \(shape) (\(n) elements)") }
            return out
        case .flatten(let a, let b):
            let s = try dim(a, shape.count), e = try dim(b, shape.count)
            guard s <= e else { throw MappingError("\(self): start after end") }
            guard let merged = ShapeMath.product(shape[s...e]) else {
                throw MappingError("\(self): dims \(s)...\(e) of shape \(shape) hold more elements than fit in 64 bits")
            }
            return Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...])
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
            guard DTypeConversion.canConvert(from: t.dtype, to: target), !(t.dtype.isComplex && !target.isComplex) else {
                throw LayoutError("cast: a \(t.dtype.rawValue) tensor does not convert to \(target.rawValue)")
            }
            return t.converted(to: target)
        case .transpose where t.dtype.isPacked, .permute where t.dtype.isPacked:
            throw LayoutError("\(self): a packed \(t.dtype.rawValue) tensor cannot be re-laid out")
        case .transpose:
            var p = Array(0..<t.shape.count)
            p.swapAt(p.count - 1, p.count - 2)
            return TensorLayout.permute(t, p)
        case .permute(let p):
            return TensorLayout.permute(t, p)
        }
    }
}
