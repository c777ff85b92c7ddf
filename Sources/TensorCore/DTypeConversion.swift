/// Element type conversions, including IEEE half and bfloat16 with round-to-nearest-even.
package enum DTypeConversion {
    /// bfloat16 bits → Float.
    @inline(__always) public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → bfloat16 bits, round to nearest even; NaN stays NaN.
    @inline(__always) public static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x0040) }
        let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    @inline(__always) public static func f16ToFloat(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inline(__always) public static func floatToF16(_ f: Float) -> UInt16 {
        Float16(f).bitPattern
    }

    /// Converts `count` little-endian elements of `from` into `to`. Floats to ints truncate toward zero
    /// (as `Tensor.to(int)` does in PyTorch); anything to bool is `!= 0`.
    /// Requires `canConvert(from:to:)`.
    public static func convert(_ src: [UInt8], from: DType, to: DType, count: Int) -> [UInt8] {
        if from == to { return src }
        precondition(canConvert(from: from, to: to), "no element conversion between \(from.rawValue) and \(to.rawValue)")
        return [UInt8](unsafeUninitializedCapacity: count * to.byteSize) { d, initialized in
            if count > 0 {
                src.withUnsafeBytes { s in convert(s.baseAddress!, from: from, into: UnsafeMutableRawPointer(d.baseAddress!), to: to, count: count) }
            }
            initialized = count * to.byteSize
        }
    }

    /// Raw-pointer form of `convert`, for streaming writers.
    public static func convert(_ s: UnsafeRawPointer, from: DType, into d: UnsafeMutableRawPointer, to: DType, count: Int) {
        if count == 0 { return }
        if from == to { d.copyMemory(from: s, byteCount: ShapeMath.byteCount([count], from) ?? 0); return }
        precondition(canConvert(from: from, to: to), "no element conversion between \(from.rawValue) and \(to.rawValue)")
        // Float paths: eight lanes at a time, split over the cores for large tensors. Exact: the same bits as the
        // scalar conversions (IEEE round-to-nearest-even, NaN kept as NaN), checked exhaustively by the tests.
        let kernel: (@Sendable (UnsafeRawPointer, UnsafeMutableRawPointer, Int) -> Void)?
        switch (from, to) {
        case (.float16, .float32): kernel = halfToFloat
        case (.float32, .float16): kernel = floatToHalf
        case (.bfloat16, .float32): kernel = bfloatToFloat
        case (.float32, .bfloat16): kernel = floatToBFloat
        default: kernel = nil
        }
        if let kernel {
            let src = SendableConstPointer(s.assumingMemoryBound(to: UInt8.self))
            let dst = SendablePointer(d.assumingMemoryBound(to: UInt8.self))
            let (inSize, outSize) = (from.byteSize, to.byteSize)
            let blocks = (count + 4095) / 4096
            Parallel.forEachChunk(blocks, costPerItem: 4096) { range in
                let lo = range.lowerBound * 4096, hi = Swift.min(count, range.upperBound * 4096)
                kernel(UnsafeRawPointer(src.p + lo * inSize), UnsafeMutableRawPointer(dst.p + lo * outSize), hi - lo)
            }
            return
        }
        for i in 0..<count {
            let v = load(s, from, i)
            store(d, to, i, v)
        }
    }

    /// Whether `convert` handles `from` → `to`: the same type, or two element-addressable types (the packed
    /// sub-byte types convert to nothing else). Complex → real keeps the real part, as `torch.Tensor.real`;
    /// callers that must not lose the imaginary part check `isComplex` first.
    public static func canConvert(from: DType, to: DType) -> Bool {
        from == to || (from.isConvertible && to.isConvertible)
    }

    /// Generic element value: exact for all integer types, float64 and the complex types.
    enum Scalar { case f(Double); case i(Int64); case u(UInt64); case c(Double, Double) }

    @inline(__always) static func load(_ p: UnsafeRawPointer, _ t: DType, _ i: Int) -> Scalar {
        switch t {
        case .float64: return .f(p.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
        case .float32: return .f(Double(p.loadUnaligned(fromByteOffset: i * 4, as: Float.self)))
        case .float16: return .f(Double(f16ToFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
        case .bfloat16: return .f(Double(bf16ToFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
        case .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu:
            return .f(Double(Float8Format(t).decode(p.load(fromByteOffset: i, as: UInt8.self))))
        case .complex64:
            return .c(Double(p.loadUnaligned(fromByteOffset: i * 8, as: Float.self)), Double(p.loadUnaligned(fromByteOffset: i * 8 + 4, as: Float.self)))
        case .complex128:
            return .c(p.loadUnaligned(fromByteOffset: i * 16, as: Double.self), p.loadUnaligned(fromByteOffset: i * 16 + 8, as: Double.self))
        case .int64: return .i(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .int32: return .i(Int64(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
        case .int16: return .i(Int64(p.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
        case .int8: return .i(Int64(p.load(fromByteOffset: i, as: Int8.self)))
        case .uint64: return .u(p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
        case .uint32: return .u(UInt64(p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
        case .uint16: return .u(UInt64(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        case .uint8: return .u(UInt64(p.load(fromByteOffset: i, as: UInt8.self)))
        case .bool: return .u(p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0)
        case .float4_e2m1fn, .float6_e2m3fn, .float6_e3m2fn: return .u(0)  // unreachable: canConvert excludes them
        }
    }

    @inline(__always) static func store(_ p: UnsafeMutableRawPointer, _ t: DType, _ i: Int, _ v: Scalar) {
        let dbl: Double
        let int: Int64
        var imag = 0.0
        func truncated(_ x: Double) -> Int64 {
            x.isFinite ? Int64(clamping: Int64(exactly: x.rounded(.towardZero)) ?? (x < 0 ? Int64.min : Int64.max)) : 0
        }
        switch v {
        case .f(let x): dbl = x; int = truncated(x)
        case .i(let x): dbl = Double(x); int = x
        case .u(let x): dbl = Double(x); int = Int64(truncatingIfNeeded: x)
        case .c(let re, let im): dbl = re; int = truncated(re); imag = im
        }
        switch t {
        case .float64: p.storeBytes(of: dbl, toByteOffset: i * 8, as: Double.self)
        case .float32: p.storeBytes(of: Float(dbl), toByteOffset: i * 4, as: Float.self)
        case .float16: p.storeBytes(of: floatToF16(Float(dbl)), toByteOffset: i * 2, as: UInt16.self)
        case .bfloat16: p.storeBytes(of: floatToBF16(Float(dbl)), toByteOffset: i * 2, as: UInt16.self)
        case .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu:
            p.storeBytes(of: Float8Format(t).encode(dbl), toByteOffset: i, as: UInt8.self)
        case .complex64:
            p.storeBytes(of: Float(dbl), toByteOffset: i * 8, as: Float.self)
            p.storeBytes(of: Float(imag), toByteOffset: i * 8 + 4, as: Float.self)
        case .complex128:
            p.storeBytes(of: dbl, toByteOffset: i * 16, as: Double.self)
            p.storeBytes(of: imag, toByteOffset: i * 16 + 8, as: Double.self)
        case .int64: p.storeBytes(of: int, toByteOffset: i * 8, as: Int64.self)
        case .int32: p.storeBytes(of: Int32(truncatingIfNeeded: int), toByteOffset: i * 4, as: Int32.self)
        case .int16: p.storeBytes(of: Int16(truncatingIfNeeded: int), toByteOffset: i * 2, as: Int16.self)
        case .int8: p.storeBytes(of: Int8(truncatingIfNeeded: int), toByteOffset: i, as: Int8.self)
        case .uint64:
            let u: UInt64
            switch v {
            case .u(let x): u = x
            case .f(let x) where x >= 0x1p63 && x < 0x1p64: u = UInt64(x)   // above Int64.max: exact
            default: u = UInt64(bitPattern: int)
            }
            p.storeBytes(of: u, toByteOffset: i * 8, as: UInt64.self)
        case .uint32: p.storeBytes(of: UInt32(truncatingIfNeeded: int), toByteOffset: i * 4, as: UInt32.self)
        case .uint16: p.storeBytes(of: UInt16(truncatingIfNeeded: int), toByteOffset: i * 2, as: UInt16.self)
        case .uint8: p.storeBytes(of: UInt8(truncatingIfNeeded: int), toByteOffset: i, as: UInt8.self)
        case .bool:
            let nz: Bool
            switch v { case .f(let x): nz = x != 0; case .i(let x): nz = x != 0; case .u(let x): nz = x != 0; case .c(let a, let b): nz = a != 0 || b != 0 }
            p.storeBytes(of: nz ? 1 : 0, toByteOffset: i, as: UInt8.self)
        case .float4_e2m1fn, .float6_e2m3fn, .float6_e3m2fn: break  // unreachable: canConvert excludes them
        }
    }

    // MARK: Vector kernels (any alignment; `n` elements from `s` into `d`)

    typealias Lanes = SIMD8<UInt32>

    // Lane masks by arithmetic, not SIMDMask: the generic `replacing(with:where:)` runs lane by lane.

    /// All ones in the lanes where a < k, for a and k below 2^31 (the sign of a − k, spread by an arithmetic shift).
    @inline(__always) static func below(_ a: Lanes, _ k: UInt32) -> Lanes {
        unsafeBitCast(unsafeBitCast(a &- k, to: SIMD8<Int32>.self) &>> 31, to: Lanes.self)
    }

    /// `yes` where `mask` is all ones, else `no`.
    @inline(__always) static func select(_ mask: Lanes, _ yes: Lanes, _ no: Lanes) -> Lanes {
        (yes & mask) | (no & ~mask)
    }

    /// Drives a widening kernel (2-byte elements to 4-byte ones) eight lanes at a time, then a scalar tail.
    @inline(__always)
    static func widen(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int,
                      _ lanes: (Lanes) -> Lanes, _ scalar: (UInt16) -> Float) {
        var i = 0
        while i + 8 <= n {
            let h = Lanes(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self))
            d.storeBytes(of: lanes(h), toByteOffset: i * 4, as: Lanes.self)
            i += 8
        }
        while i < n {
            d.storeBytes(of: scalar(s.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)), toByteOffset: i * 4, as: Float.self)
            i += 1
        }
    }

    /// Drives a narrowing kernel (float32 bits to 16-bit results in the low half of each lane), then a scalar tail.
    @inline(__always)
    static func narrow(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int,
                       _ lanes: (Lanes) -> Lanes, _ scalar: (Float) -> UInt16) {
        var i = 0
        while i + 8 <= n {
            let x = s.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
            d.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: lanes(x)), toByteOffset: i * 2, as: SIMD8<UInt16>.self)
            i += 8
        }
        while i < n {
            d.storeBytes(of: scalar(s.loadUnaligned(fromByteOffset: i * 4, as: Float.self)), toByteOffset: i * 2, as: UInt16.self)
            i += 1
        }
    }

    /// float16 → float32. Finite values: the 15 magnitude bits shifted into a float32's exponent/mantissa
    /// position, then scaled by 2^112 to re-bias the exponent (subnormal halves come out exact, as float32
    /// subnormals times a power of two). Inf/NaN: exponent forced to all ones, payload kept.
    static func halfToFloat(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int) {
        let scale = SIMD8<Float>(repeating: Float(bitPattern: 0x7780_0000))  // 2^112
        widen(s, d, n, { h in
            let magnitude = (h & 0x7FFF) &<< 13
            let finite = unsafeBitCast(unsafeBitCast(magnitude, to: SIMD8<Float>.self) * scale, to: Lanes.self)
            let special = magnitude | 0x7F80_0000
            return select(below(h & 0x7C00, 0x7C00), finite, special) | ((h & 0x8000) &<< 16)
        }, f16ToFloat)
    }

    /// float32 → float16, round to nearest even. Three cases computed for every lane, then selected:
    /// overflow (≥ 2^16 in magnitude: ±inf, or NaN); results below the smallest normal half (2^-14),
    /// rounded by adding 0.5 in float32 so the hardware's own rounding places the subnormal half's bits; and
    /// normal results, re-biased with a round-half-even increment on the 13 dropped bits (a carry out of the
    /// mantissa correctly bumps the exponent, up to infinity at 65520).
    static func floatToHalf(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int) {
        let half = SIMD8<Float>(repeating: 0.5)
        narrow(s, d, n, { x in
            let sign = (x & 0x8000_0000) &>> 16
            let a = x & 0x7FFF_FFFF
            let nan = 0x7E00 | ((a &>> 13) & 0x3FF)                           // quiet, top payload bits kept
            let overflow = select(below(a, 0x7F80_0001), Lanes(repeating: 0x7C00), nan)
            let tiny = unsafeBitCast(unsafeBitCast(a, to: SIMD8<Float>.self) + half, to: Lanes.self) &- 0x3F00_0000
            let normal = (a &+ 0xC800_0FFF &+ ((a &>> 13) & 1)) &>> 13   // 0xC8000000 = (15 - 127) << 23, wrapped
            return select(below(a, 0x4780_0000), select(below(a, 0x3880_0000), tiny, normal), overflow) | sign  // 2^16, 2^-14
        }, floatToF16)
    }

    static func bfloatToFloat(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int) {
        widen(s, d, n, { $0 &<< 16 }, bf16ToFloat)
    }

    /// float32 → bfloat16, round to nearest even; NaN stays NaN (quiet bit set), as `floatToBF16`.
    static func floatToBFloat(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ n: Int) {
        narrow(s, d, n, { x in
            let rounded = (x &+ 0x7FFF &+ ((x &>> 16) & 1)) &>> 16
            return select(below(x & 0x7FFF_FFFF, 0x7F80_0001), rounded, (x &>> 16) | 0x0040)
        }, floatToBF16)
    }
}
