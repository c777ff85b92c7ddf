import Foundation

/// Element-wise comparison of two tensors of one shape, in blocks: each block of both sides is widened into a
/// small buffer (`DTypeConversion`, exact for every float up to float64, every integer into 64 bits) and compared
/// there, so memory beyond the two tensors stays a few hundred KiB.
///
/// Equality: a == b (so −0 equals +0 and equal infinities are equal), or both NaN (NaN payloads are not
/// distinguished). Otherwise the pair is within tolerance when both are finite and |a − b| ≤ atol + rtol·|b|; a NaN
/// against a number, or an infinity against anything else, is outside it and counts |Δ| = +∞.
enum ElementComparison {
    static let block = 8192

    static func compare(_ a: Tensor, _ b: Tensor, atol: Double, rtol: Double) -> ValueDiff {
        precondition(a.shape == b.shape, "compare needs equal shapes")
        if a.dtype.isPacked || b.dtype.isPacked { return bytes(a, b) }
        var acc = Accumulator(shape: a.shape)
        let count = a.elementCount
        // The same bits are the same values (NaN included): the usual case of a conversion check, at memcmp speed.
        if a.dtype == b.dtype && sameBytes(a.bytes, b.bytes) {
            let domain: ValueDiff.Domain = a.dtype.isComplex ? .complex128 : (a.dtype.isFloatingPoint ? .float64 : .integer)
            return acc.result(domain, elements: count)
        }
        if a.dtype.isComplex || b.dtype.isComplex {
            blocks(a, b, as: .complex128, count: count) { x, y, base, n in
                let p = x.assumingMemoryBound(to: Double.self), q = y.assumingMemoryBound(to: Double.self)
                for i in 0..<n {
                    let (ar, ai, br, bi) = (p[2 * i], p[2 * i + 1], q[2 * i], q[2 * i + 1])
                    if ar == br && ai == bi { continue }
                    let aNaN = ar.isNaN || ai.isNaN, bNaN = br.isNaN || bi.isNaN
                    if aNaN && bNaN { continue }
                    let finite = ar.isFinite && ai.isFinite && br.isFinite && bi.isFinite
                    let d = finite ? hypot(ar - br, ai - bi) : .infinity
                    acc.add(d, within: finite && d <= atol + rtol * hypot(br, bi), at: base + i,
                            .complex(ar, ai), .complex(br, bi))
                }
            }
            return acc.result(.complex128, elements: count)
        }
        let integral = (a.dtype.isInteger || a.dtype == .bool) && (b.dtype.isInteger || b.dtype == .bool)
        if integral {
            // uint64 stays uint64; every other integer (and bool) widens exactly to int64.
            let wa: DType = a.dtype == .uint64 ? .uint64 : .int64, wb: DType = b.dtype == .uint64 ? .uint64 : .int64
            blocks(a, b, as: (wa, wb), count: count) { x, y, base, n in
                for i in 0..<n {
                    let u = x.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self), v = y.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                    let p: Int128 = wa == .uint64 ? Int128(u) : Int128(Int64(bitPattern: u))
                    let q: Int128 = wb == .uint64 ? Int128(v) : Int128(Int64(bitPattern: v))
                    if p == q { continue }
                    let d = Double(p > q ? p - q : q - p)
                    acc.add(d, within: d <= atol + rtol * abs(Double(q)), at: base + i, .integer(p), .integer(q))
                }
            }
            return acc.result(.integer, elements: count)
        }
        blocks(a, b, as: .float64, count: count) { x, y, base, n in
            // The hot loop of a real diff: counts and the running maximum kept in locals, the accumulator
            // updated once per block.
            let p = UnsafeBufferPointer(start: x.assumingMemoryBound(to: Double.self), count: n)
            let q = UnsafeBufferPointer(start: y.assumingMemoryBound(to: Double.self), count: n)
            var beyond = 0, best = acc.maxAbs, bestIndex = -1
            let first = acc.worst == nil
            for i in 0..<n {
                let u = p[i], v = q[i]
                if u == v || (u.isNaN && v.isNaN) { continue }
                let finite = u.isFinite && v.isFinite
                let d = finite ? abs(u - v) : .infinity
                if !(finite && d <= atol + rtol * abs(v)) { beyond += 1 }
                if d > best || (first && bestIndex < 0) { best = d; bestIndex = i }
            }
            acc.beyond += beyond
            if bestIndex >= 0 { acc.add(best, within: true, at: base + bestIndex, .real(p[bestIndex]), .real(q[bestIndex])) }
        }
        return acc.result(.float64, elements: count)
    }

    /// Packed sub-byte tensors of one dtype: byte by byte (no tolerance applies).
    static func bytes(_ a: Tensor, _ b: Tensor) -> ValueDiff {
        var differing = 0
        var first: Int?
        for i in 0..<min(a.bytes.count, b.bytes.count) where a.bytes[i] != b.bytes[i] {
            differing += 1
            if first == nil { first = i }
        }
        return ValueDiff(domain: .bytes, elements: a.bytes.count, beyondTolerance: differing, maxAbs: nil,
                         index: first.map { [$0] }, a: first.map { .byte(a.bytes[$0]) }, b: first.map { .byte(b.bytes[$0]) })
    }

    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in
            guard let p = x.baseAddress, let q = y.baseAddress else { return true }
            return memcmp(p, q, a.count) == 0
        } }
    }

    /// Widens `n` elements of `dtype` at `src` into `dst` as `wide`. float32 (and float16 / bfloat16, through
    /// DTypeConversion's vector kernels into `scratch`) → float64 by a direct loop; everything else through
    /// `DTypeConversion` element by element.
    static func widen(_ src: UnsafeRawPointer, _ dtype: DType, into dst: UnsafeMutableRawPointer, _ wide: DType, count n: Int,
                      scratch: UnsafeMutablePointer<Float>) {
        var floats: UnsafeRawPointer?
        if wide == .float64 && dtype == .float32 {
            floats = src
        } else if wide == .float64 && (dtype == .float16 || dtype == .bfloat16) {
            DTypeConversion.convert(src, from: dtype, into: UnsafeMutableRawPointer(scratch), to: .float32, count: n)
            floats = UnsafeRawPointer(scratch)
        }
        guard let floats else { return DTypeConversion.convert(src, from: dtype, into: dst, to: wide, count: n) }
        let d = dst.assumingMemoryBound(to: Double.self)
        for i in 0..<n { d[i] = Double(floats.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)) }
    }

    /// Calls `body` with each block of both tensors widened to `as` (the same type for both sides).
    static func blocks(_ a: Tensor, _ b: Tensor, as wide: DType, count: Int,
                       _ body: (UnsafeRawPointer, UnsafeRawPointer, Int, Int) -> Void) {
        blocks(a, b, as: (wide, wide), count: count, body)
    }

    /// Calls `body(x, y, firstIndex, n)` with each block of `a` widened to `as.0` and of `b` to `as.1`.
    static func blocks(_ a: Tensor, _ b: Tensor, as wide: (DType, DType), count: Int,
                       _ body: (UnsafeRawPointer, UnsafeRawPointer, Int, Int) -> Void) {
        guard count > 0 else { return }
        let n0 = Swift.min(block, count)
        let bufA = UnsafeMutableRawPointer.allocate(byteCount: n0 * wide.0.byteSize, alignment: 16)
        let bufB = UnsafeMutableRawPointer.allocate(byteCount: n0 * wide.1.byteSize, alignment: 16)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n0)
        defer { bufA.deallocate(); bufB.deallocate(); scratch.deallocate() }
        a.bytes.withUnsafeBytes { ra in
            b.bytes.withUnsafeBytes { rb in
                guard let pa = ra.baseAddress, let pb = rb.baseAddress else { return }
                var start = 0
                while start < count {
                    let n = Swift.min(block, count - start)
                    widen(pa + start * a.dtype.byteSize, a.dtype, into: bufA, wide.0, count: n, scratch: scratch)
                    widen(pb + start * b.dtype.byteSize, b.dtype, into: bufB, wide.1, count: n, scratch: scratch)
                    body(UnsafeRawPointer(bufA), UnsafeRawPointer(bufB), start, n)
                    start += n
                }
            }
        }
    }

    /// Running maximum of |Δ| (first element wins ties) and the count outside tolerance.
    struct Accumulator {
        let shape: [Int]
        var beyond = 0
        var maxAbs = 0.0
        var worst: (index: Int, a: ElementValue, b: ElementValue)?

        init(shape: [Int]) { self.shape = shape }

        mutating func add(_ d: Double, within: Bool, at index: Int, _ a: ElementValue, _ b: ElementValue) {
            if !within { beyond += 1 }
            if worst == nil || d > maxAbs { maxAbs = d; worst = (index, a, b) }
        }

        func result(_ domain: ValueDiff.Domain, elements: Int) -> ValueDiff {
            ValueDiff(domain: domain, elements: elements, beyondTolerance: beyond, maxAbs: maxAbs,
                      index: worst.map { Comparison.multiIndex($0.index, shape) }, a: worst?.a, b: worst?.b)
        }
    }
}
