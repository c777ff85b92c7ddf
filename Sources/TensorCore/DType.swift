/// Element types a checkpoint tensor can hold. Raw values are the names PyTorch prints (`torch.float32` → "float32");
/// the packed sub-byte floats torch has no dtype for use the names of the OCP MX formats (`float4_e2m1fn`).
public enum DType: String, Sendable, CaseIterable, Codable, Hashable {
    case float64, float32, float16, bfloat16
    /// The 8-bit floats: e4m3fn (no infinities, NaN = S.1111.111), e5m2 (IEEE-like), the "fnuz" variants (no
    /// infinities, no negative zero, NaN = 0x80, exponent bias one higher) and e8m0fnu (a bare exponent: 2^(e−127),
    /// 0xFF = NaN, no sign, no zero).
    case float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz, float8_e8m0fnu
    /// Packed sub-byte floats (safetensors `F4`, `F6_E2M3`, `F6_E3M2`): the shape counts elements, the data is
    /// `elements × bits / 8` bytes. They are carried verbatim: no conversion, no layout transform.
    case float4_e2m1fn, float6_e2m3fn, float6_e3m2fn
    /// Interleaved (real, imaginary) pairs of float32 / float64.
    case complex64, complex128
    case int64, int32, int16, int8
    case uint64, uint32, uint16, uint8
    case bool

    /// Bits per element.
    public var bitSize: Int {
        switch self {
        case .complex128: return 128
        case .float64, .int64, .uint64, .complex64: return 64
        case .float32, .int32, .uint32: return 32
        case .float16, .bfloat16, .int16, .uint16: return 16
        case .int8, .uint8, .bool, .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu: return 8
        case .float6_e2m3fn, .float6_e3m2fn: return 6
        case .float4_e2m1fn: return 4
        }
    }

    /// Bytes per element (whole-byte types; 1 for the packed sub-byte types, whose sizes go through `ShapeMath`).
    public var byteSize: Int { max(bitSize / 8, 1) }

    /// True for the packed sub-byte types: bytes cannot be addressed per element.
    public var isPacked: Bool { bitSize % 8 != 0 }

    /// Real floating-point types whose elements convert to and from Float (`--dtype` casts apply to these).
    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: return true
        default: return isFloat8
        }
    }

    public var isFloat8: Bool {
        switch self {
        case .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu: return true
        default: return false
        }
    }

    /// Signed and unsigned integers (not bool).
    public var isInteger: Bool {
        switch self {
        case .int64, .int32, .int16, .int8, .uint64, .uint32, .uint16, .uint8: return true
        default: return false
        }
    }

    public var isComplex: Bool { self == .complex64 || self == .complex128 }

    public var isUnsignedInteger: Bool {
        switch self {
        case .uint8, .uint16, .uint32, .uint64: return true
        default: return false
        }
    }

    /// Whether `DTypeConversion` converts elements of this type (everything but the packed types).
    public var isConvertible: Bool { !isPacked }

    /// The dtype a tensor of this dtype is written as under a `--dtype` cast: the cast applies to real floating-point
    /// tensors (float8 widens exactly to float32/float64) and only to a non-float8 floating target; complex,
    /// integer, bool and packed tensors keep their dtype.
    public func cast(to target: DType?) -> DType {
        guard let target, isFloatingPoint, target.isFloatingPoint, !target.isFloat8 else { return self }
        return target
    }

    /// The dtype code used in safetensors headers, or nil when safetensors has none (complex128).
    public var safetensorsCode: String? {
        switch self {
        case .float64: return "F64"
        case .float32: return "F32"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float8_e4m3fn: return "F8_E4M3"
        case .float8_e5m2: return "F8_E5M2"
        case .float8_e4m3fnuz: return "F8_E4M3FNUZ"
        case .float8_e5m2fnuz: return "F8_E5M2FNUZ"
        case .float8_e8m0fnu: return "F8_E8M0"
        case .float4_e2m1fn: return "F4"
        case .float6_e2m3fn: return "F6_E2M3"
        case .float6_e3m2fn: return "F6_E3M2"
        case .complex64: return "C64"
        case .complex128: return nil
        case .int64: return "I64"
        case .int32: return "I32"
        case .int16: return "I16"
        case .int8: return "I8"
        case .uint64: return "U64"
        case .uint32: return "U32"
        case .uint16: return "U16"
        case .uint8: return "U8"
        case .bool: return "BOOL"
        }
    }

    /// `safetensorsCode`, or the torch name for types safetensors cannot hold (for messages).
    public var safetensorsName: String { safetensorsCode ?? rawValue }

    public init?(safetensorsName: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsCode == safetensorsName }) else { return nil }
        self = match
    }
}
