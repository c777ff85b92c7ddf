/// Element type conversions, including IEEE half and bfloat16 with round-to-nearest-even.
public enum DTypeConversion {
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
    public static func convert(_ src: [UInt8], from: DType, to: DType, count: Int) -> [UInt8] {
        if from == to { return src }
        var out = [UInt8](repeating: 0, count: count * to.byteSize)
        src.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { d in
                convert(s.baseAddress!, from: from, into: d.baseAddress!, to: to, count: count)
            }
        }
        return out
    }

    /// Raw-pointer form of `convert`, for streaming writers.
    public static func convert(_ s: UnsafeRawPointer, from: DType, into d: UnsafeMutableRawPointer, to: DType, count: Int) {
        if count == 0 { return }
        if from == to { d.copyMemory(from: s, byteCount: count * from.byteSize); return }
        // Fast float paths.
        switch (from, to) {
        case (.float32, .float16):
            let a = s.assumingMemoryBound(to: Float.self), b = d.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { b[i] = floatToF16(a[i]) }
            return
        case (.float16, .float32):
            let a = s.assumingMemoryBound(to: UInt16.self), b = d.assumingMemoryBound(to: Float.self)
            for i in 0..<count { b[i] = f16ToFloat(a[i]) }
            return
        case (.float32, .bfloat16):
            let a = s.assumingMemoryBound(to: Float.self), b = d.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { b[i] = floatToBF16(a[i]) }
            return
        case (.bfloat16, .float32):
            let a = s.assumingMemoryBound(to: UInt16.self), b = d.assumingMemoryBound(to: Float.self)
            for i in 0..<count { b[i] = bf16ToFloat(a[i]) }
            return
        default: break
        }
        for i in 0..<count {
            let v = load(s, from, i)
            store(d, to, i, v)
        }
    }

    /// Generic element value: exact for all integer types and float64.
    enum Scalar { case f(Double); case i(Int64); case u(UInt64) }

    @inline(__always) static func load(_ p: UnsafeRawPointer, _ t: DType, _ i: Int) -> Scalar {
        switch t {
        case .float64: return .f(p.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
        case .float32: return .f(Double(p.loadUnaligned(fromByteOffset: i * 4, as: Float.self)))
        case .float16: return .f(Double(f16ToFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
        case .bfloat16: return .f(Double(bf16ToFloat(p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
        case .int64: return .i(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .int32: return .i(Int64(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
        case .int16: return .i(Int64(p.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
        case .int8: return .i(Int64(p.load(fromByteOffset: i, as: Int8.self)))
        case .uint8: return .u(UInt64(p.load(fromByteOffset: i, as: UInt8.self)))
        case .bool: return .u(p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0)
        }
    }

    @inline(__always) static func store(_ p: UnsafeMutableRawPointer, _ t: DType, _ i: Int, _ v: Scalar) {
        let dbl: Double
        let int: Int64
        switch v {
        case .f(let x): dbl = x; int = x.isFinite ? Int64(clamping: Int64(exactly: x.rounded(.towardZero)) ?? (x < 0 ? Int64.min : Int64.max)) : 0
        case .i(let x): dbl = Double(x); int = x
        case .u(let x): dbl = Double(x); int = Int64(truncatingIfNeeded: x)
        }
        switch t {
        case .float64: p.storeBytes(of: dbl, toByteOffset: i * 8, as: Double.self)
        case .float32: p.storeBytes(of: Float(dbl), toByteOffset: i * 4, as: Float.self)
        case .float16: p.storeBytes(of: floatToF16(Float(dbl)), toByteOffset: i * 2, as: UInt16.self)
        case .bfloat16: p.storeBytes(of: floatToBF16(Float(dbl)), toByteOffset: i * 2, as: UInt16.self)
        case .int64: p.storeBytes(of: int, toByteOffset: i * 8, as: Int64.self)
        case .int32: p.storeBytes(of: Int32(truncatingIfNeeded: int), toByteOffset: i * 4, as: Int32.self)
        case .int16: p.storeBytes(of: Int16(truncatingIfNeeded: int), toByteOffset: i * 2, as: Int16.self)
        case .int8: p.storeBytes(of: Int8(truncatingIfNeeded: int), toByteOffset: i, as: Int8.self)
        case .uint8: p.storeBytes(of: UInt8(truncatingIfNeeded: int), toByteOffset: i, as: UInt8.self)
        case .bool:
            let nz: Bool
            switch v { case .f(let x): nz = x != 0; case .i(let x): nz = x != 0; case .u(let x): nz = x != 0 }
            p.storeBytes(of: nz ? 1 : 0, toByteOffset: i, as: UInt8.self)
        }
    }
}
