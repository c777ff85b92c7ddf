/// The 8-bit float formats (OCP FP8 e4m3fn / e5m2, the AMD/Graphcore "fnuz" variants, and the MX scale type
/// e8m0fnu), decoded through 256-entry tables and encoded with round-to-nearest-even.
///
/// Decoding (every byte to its float32 value) is exact: each format's values are float32 values. Encoding is
/// only used when a caller converts a tensor *to* float8 through the library API (`convert` never narrows to
/// float8: `--dtype` targets are float32/float16/bfloat16) and gives torch's bytes (checked against torch 2.15 in
/// the tests): values round to nearest even; beyond the largest finite value e5m2 gives infinity, e4m3fn saturates
/// to ±448 (infinities too), the fnuz formats give NaN. e8m0fnu takes the float32's exponent, ignoring the sign,
/// rounded half to even on the leading bit; zero gives 2^-127, infinities and NaN its NaN.
public struct Float8Format: Sendable {
    public let dtype: DType
    let exponentBits: Int
    let mantissaBits: Int
    let bias: Int

    public init(_ dtype: DType) {
        precondition(dtype.isFloat8, "\(dtype.rawValue) is not an 8-bit float")
        self.dtype = dtype
        switch dtype {
        case .float8_e5m2: (exponentBits, mantissaBits, bias) = (5, 2, 15)
        case .float8_e4m3fnuz: (exponentBits, mantissaBits, bias) = (4, 3, 8)
        case .float8_e5m2fnuz: (exponentBits, mantissaBits, bias) = (5, 2, 16)
        case .float8_e8m0fnu: (exponentBits, mantissaBits, bias) = (8, 0, 127)
        default: (exponentBits, mantissaBits, bias) = (4, 3, 7)  // e4m3fn
        }
    }

    /// The byte's value (exact).
    @inline(__always) public func decode(_ b: UInt8) -> Float {
        switch dtype {
        case .float8_e5m2: return Float8Format.e5m2[Int(b)]
        case .float8_e4m3fnuz: return Float8Format.e4m3fnuz[Int(b)]
        case .float8_e5m2fnuz: return Float8Format.e5m2fnuz[Int(b)]
        case .float8_e8m0fnu: return Float8Format.e8m0fnu[Int(b)]
        default: return Float8Format.e4m3fn[Int(b)]
        }
    }

    static let e4m3fn = table(.float8_e4m3fn)
    static let e5m2 = table(.float8_e5m2)
    static let e4m3fnuz = table(.float8_e4m3fnuz)
    static let e5m2fnuz = table(.float8_e5m2fnuz)
    static let e8m0fnu = table(.float8_e8m0fnu)

    static func table(_ dtype: DType) -> [Float] {
        let f = Float8Format(dtype)
        return (0..<256).map { f.compute(UInt8($0)) }
    }

    /// True for the byte patterns that are NaN.
    func isNaNCode(_ b: UInt8) -> Bool {
        switch dtype {
        case .float8_e5m2: return b & 0x7C == 0x7C && b & 0x03 != 0
        case .float8_e4m3fnuz, .float8_e5m2fnuz: return b == 0x80
        case .float8_e8m0fnu: return b == 0xFF
        default: return b & 0x7F == 0x7F
        }
    }

    func compute(_ b: UInt8) -> Float {
        if isNaNCode(b) { return .nan }
        if dtype == .float8_e8m0fnu { return Float(sign: .plus, exponent: Int(b) - 127, significand: 1) }
        let negative = b & 0x80 != 0
        let e = Int(b >> mantissaBits) & ((1 << exponentBits) - 1)
        let m = Int(b) & ((1 << mantissaBits) - 1)
        if dtype == .float8_e5m2 && e == 31 { return negative ? -.infinity : .infinity }
        let magnitude: Float = e == 0
            ? Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: Float(m))
            : Float(sign: .plus, exponent: e - bias, significand: 1 + Float(m) / Float(1 << mantissaBits))
        return negative ? -magnitude : magnitude
    }

    /// The NaN byte a conversion writes.
    var nanCode: UInt8 {
        switch dtype {
        case .float8_e5m2: return 0x7E
        case .float8_e4m3fnuz, .float8_e5m2fnuz: return 0x80
        case .float8_e8m0fnu: return 0xFF
        default: return 0x7F
        }
    }

    /// `x` rounded to this format (see the type's note).
    public func encode(_ x: Double) -> UInt8 {
        if x.isNaN { return nanCode }
        if dtype == .float8_e8m0fnu {
            let bits = Float(x).bitPattern
            let e = (bits >> 23) & 0xFF
            if e == 0xFF { return nanCode }
            // Round half to even on the float32's leading bit (1 for normals, 0 for subnormals); 255 is NaN, as torch gives.
            let up = bits & 0x40_0000 != 0 && (bits & 0x3F_FFFF != 0 || e != 0)
            return UInt8(up ? e + 1 : e)
        }
        let negative = x.sign == .minus
        let a = x.magnitude
        let signBit: UInt8 = negative ? 0x80 : 0
        let fnuz = dtype == .float8_e4m3fnuz || dtype == .float8_e5m2fnuz
        let largest = maxFiniteCode
        let overflow: UInt8
        switch dtype {
        case .float8_e5m2: overflow = signBit | 0x7C
        case .float8_e4m3fn: overflow = signBit | 0x7E
        default: overflow = nanCode
        }
        if a.isInfinite { return overflow }
        let minNormalExponent = 1 - bias
        // Quantum (spacing) of the representable values around a.
        let exponent = a == 0 ? minNormalExponent : max(Int(a.exponent), minNormalExponent)
        let quantum = Double(sign: .plus, exponent: exponent - mantissaBits, significand: 1)
        let q = (a / quantum).rounded(.toNearestOrEven)  // exact division by a power of two
        var code: Int
        if exponent == minNormalExponent && q < Double(1 << mantissaBits) {
            code = Int(q)                                  // subnormal (or zero)
        } else {
            var e = exponent, mant = Int(q)
            if mant == 2 << mantissaBits { e += 1; mant = 1 << mantissaBits }
            code = ((e + bias) << mantissaBits) | (mant - (1 << mantissaBits))
        }
        if code > Int(largest) { return overflow }
        if code == 0 && fnuz { return 0 }                  // no negative zero
        return signBit | UInt8(code)
    }

    /// The largest finite magnitude's byte (sign bit clear).
    var maxFiniteCode: UInt8 {
        switch dtype {
        case .float8_e5m2: return 0x7B
        case .float8_e4m3fnuz, .float8_e5m2fnuz: return 0x7F
        default: return 0x7E
        }
    }
}
