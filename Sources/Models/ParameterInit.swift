import TensorCore

/// Where a model's tensors come from while it is built: seeded random values (PyTorch's default scales), or
/// shapes only (`meta`, like PyTorch's meta device) so a model can be listed — keys, shapes, options, inputs —
/// without allocating its weights (ViT-H/14 would take 2.5 GB). Layers take one `inout` and draw from it in
/// construction order, so the same seed gives the same weights on every platform.
public struct ParameterInit: Sendable {
    var rng: SeededGenerator
    /// True when tensors get shapes but no storage. A meta model is listed, never run.
    public let isMeta: Bool

    /// Seeded values (SplitMix64; see `SeededGenerator`).
    public static func seeded(_ seed: UInt64) -> ParameterInit { ParameterInit(rng: SeededGenerator(seed: seed), isMeta: false) }

    /// Shapes only. Package-internal: a meta model must not reach a kernel.
    package static var meta: ParameterInit { ParameterInit(rng: SeededGenerator(seed: 0), isMeta: true) }

    /// Uniform in [−bound, bound).
    public mutating func uniform(_ shape: [Int], bound: Float) -> FloatTensor {
        isMeta ? FloatTensor(metaShape: shape) : rng.uniformTensor(shape, bound: bound)
    }

    /// Normal(0, std) truncated to ±2·std.
    public mutating func truncatedNormal(_ shape: [Int], std: Float) -> FloatTensor {
        isMeta ? FloatTensor(metaShape: shape) : rng.normalTensor(shape, std: std)
    }

    /// Every element `value` (norm weights 1, biases 0, running variance 1).
    public func constant(_ shape: [Int], _ value: Float) -> FloatTensor {
        isMeta ? FloatTensor(metaShape: shape) : FloatTensor(shape: shape, repeating: value)
    }
}
