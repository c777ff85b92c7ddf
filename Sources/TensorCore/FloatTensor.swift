/// A dense, row-major float32 tensor: the compute type of the models (NCHW for images, [N, tokens, dim] for
/// sequences). `Tensor` is the byte-backed interchange type of the readers; convert with `init(_:)` / `tensor`.
public struct FloatTensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    /// A tensor of `shape` over `data`; the element count must match.
    public init(shape: [Int], data: [Float]) {
        precondition(ShapeMath.elementCount(shape) == data.count,
                     "FloatTensor: shape \(shape) needs \(ShapeMath.elementCount(shape) ?? -1) elements, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// A shape without storage, like PyTorch's `meta` device: lets a model list its parameters (keys, shapes)
    /// without allocating them. `data` is empty, so such a tensor must never reach a kernel.
    package init(metaShape shape: [Int]) {
        self.shape = shape
        self.data = []
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        guard let n = ShapeMath.elementCount(shape) else { preconditionFailure("FloatTensor: invalid shape \(shape)") }
        self.shape = shape
        self.data = [Float](repeating: value, count: n)
    }

    /// A tensor of `shape` whose elements are written by `body` (which must initialise all of them).
    /// Used by the kernels so outputs are not zero-filled before being overwritten.
    @inlinable
    public init(shape: [Int], uninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        guard let n = ShapeMath.elementCount(shape) else { preconditionFailure("FloatTensor: invalid shape \(shape)") }
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: n) { buf, count in
            body(buf)
            count = n
        }
    }

    /// Any-dtype `Tensor` converted to float32 (integers exactly where representable).
    public init(_ tensor: Tensor) {
        self.shape = tensor.shape
        self.data = tensor.elementCount == 0 ? [] : tensor.floats()
    }

    /// The byte-backed float32 form of this tensor.
    public var tensor: Tensor { Tensor(shape: shape, floats: data) }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> FloatTensor {
        FloatTensor(shape: newShape, data: data)
    }

    /// Largest absolute element (0 for an empty tensor).
    public var maxAbs: Float {
        data.withUnsafeBufferPointer { b in b.reduce(0) { Swift.max($0, abs($1)) } }
    }
}

extension FloatTensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(6).map { String($0) }.joined(separator: ", ")
        return "FloatTensor(\(shape), [\(head)\(data.count > 6 ? ", …" : "")])"
    }
}
