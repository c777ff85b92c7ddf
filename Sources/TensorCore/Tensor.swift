/// A dense, C-contiguous, little-endian tensor of any `DType`, backed by raw bytes.
///
/// This is the interchange type of the readers and writers: a reader materialises a tensor from a file into
/// one of these; a writer serialises one. Compute code converts to `[Float]` with `floats()`.
public struct Tensor: Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// Exactly `elementCount * dtype.byteSize` bytes, row-major, little-endian.
    public let bytes: [UInt8]

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(ShapeMath.byteCount(shape, dtype) == bytes.count, "tensor byte count does not match shape × dtype")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public var elementCount: Int { ShapeMath.elementCount(shape) ?? 0 }
    public var byteCount: Int { bytes.count }

    /// A float32 tensor from values.
    public init(shape: [Int], floats: [Float]) {
        precondition(ShapeMath.elementCount(shape) == floats.count)
        self.dtype = .float32
        self.shape = shape
        self.bytes = floats.withUnsafeBytes { Array($0) }
    }

    /// Values converted to Float (any dtype).
    public func floats() -> [Float] {
        if dtype == .float32 {
            return [Float](unsafeUninitializedCapacity: elementCount) { buf, n in
                bytes.withUnsafeBytes { memcpyBytes(UnsafeMutableRawPointer(buf.baseAddress!), $0.baseAddress!, $0.count) }
                n = elementCount
            }
        }
        return converted(to: .float32).floats()
    }

    /// This tensor with elements converted to `target` (bit-exact when `target == dtype`).
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return self }
        let out = DTypeConversion.convert(bytes, from: dtype, to: target, count: elementCount)
        return Tensor(dtype: target, shape: shape, bytes: out)
    }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(dtype: dtype, shape: newShape, bytes: bytes)
    }
}

@inline(__always)
func memcpyBytes(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ count: Int) {
    if count > 0 { dst.copyMemory(from: src, byteCount: count) }
}
