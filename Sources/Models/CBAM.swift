// CBAM attention modules of the seed's CBAM-ResNet (ChannelAttention `ca.fc.{0,2}`, SpatialAttention `sa.conv1`).
import TensorCore

/// `ChannelAttention(in_planes, ratio)`: sigmoid(fc(avg_pool(x)) + fc(max_pool(x))) with the shared
/// fc = Sequential(Conv2d(C, C//ratio, 1, bias=False), ReLU, Conv2d(C//ratio, C, 1, bias=False)); returns [N, C, 1, 1].
public struct ChannelAttention: Module, Sendable {
    /// `fc.0`: C → C/ratio, 1×1, no bias.
    public var reduce: Conv2d
    /// `fc.2`: C/ratio → C, 1×1, no bias.
    public var expand: Conv2d

    public init(channels: Int, ratio: Int = 16, rng: inout ParameterInit) {
        let hidden = channels / ratio
        reduce = Conv2d(channels, hidden, kernel: 1, bias: false, rng: &rng)
        expand = Conv2d(hidden, channels, kernel: 1, bias: false, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.scope.append("fc")
        v.child("0", &reduce)
        v.child("2", &expand)
        v.scope.removeLast()
    }

    /// The attention map [N, C, 1, 1].
    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        let n = x.shape[0]
        // Both pooled maps go through the shared MLP as one batch of 2N.
        let pooled = Kernels.concat([Kernels.adaptiveAvgPool2d(x, outputSize: (1, 1)),
                                     Kernels.adaptiveMaxPool2d(x, outputSize: (1, 1))], dim: 0)
        let mlp = expand(reduce(pooled, activation: .relu))
        let half = mlp.count / 2
        let sum = FloatTensor(shape: [n, x.shape[1], 1, 1],
                              data: (0..<half).map { mlp.data[$0] + mlp.data[half + $0] })
        return Kernels.sigmoid(sum)
    }
}

/// `SpatialAttention(kernel_size)`: sigmoid(conv1(cat[mean_c(x), max_c(x)])), conv1 = Conv2d(2, 1, k, padding=k//2,
/// bias=False); returns [N, 1, H, W].
public struct SpatialAttention: Module, Sendable {
    public var conv1: Conv2d

    public init(kernelSize: Int = 7, rng: inout ParameterInit) {
        conv1 = Conv2d(2, 1, kernel: kernelSize, padding: kernelSize / 2, bias: false, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("conv1", &conv1)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        let stacked = Kernels.concat([Kernels.meanOverChannels(x), Kernels.maxOverChannels(x)], dim: 1)
        return Kernels.sigmoid(conv1(stacked))
    }
}
