/// Overflow-checked helpers for shapes read from untrusted files.
public enum ShapeMath {
    /// Number of elements of `shape`, or nil when a dimension is negative or the product overflows.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = count.multipliedReportingOverflow(by: d)
            if o { return nil }
            count = p
        }
        return count
    }

    /// Bytes needed for `shape` of `dtype`, or nil on overflow / negative dimension, or when the elements of a
    /// packed sub-byte dtype do not fill whole bytes (safetensors' rule for `F4` / `F6_*`).
    public static func byteCount(_ shape: [Int], _ dtype: DType) -> Int? {
        guard let n = elementCount(shape) else { return nil }
        let (bits, o) = n.multipliedReportingOverflow(by: dtype.bitSize)
        guard !o, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// Product of `dims` with every partial product checked (unlike `elementCount`, a zero does not hide an
    /// overflow among the others: flattening two dims of [0, 2^32, 2^32] must not trap). nil on overflow or a
    /// negative entry.
    public static func product<S: Sequence>(_ dims: S) -> Int? where S.Element == Int {
        var p = 1
        var zero = false
        for d in dims {
            guard d >= 0 else { return nil }
            if d == 0 { zero = true; continue }
            let (q, o) = p.multipliedReportingOverflow(by: d)
            if o { return nil }
            p = q
        }
        return zero ? 0 : p
    }

    /// Sum of `values`, nil on overflow.
    public static func sum<S: Sequence>(_ values: S) -> Int? where S.Element == Int {
        var s = 0
        for v in values {
            let (t, o) = s.addingReportingOverflow(v)
            if o { return nil }
            s = t
        }
        return s
    }

    /// Row-major (C-contiguous) strides, in elements.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc = acc &* max(shape[i], 1)
        }
        return strides
    }
}
