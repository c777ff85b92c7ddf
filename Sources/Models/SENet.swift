// Seed 000's SENet-18 (`Model`: conv1 → maxpool → conv2_1 … conv5_2 ResidualBlocks with SELayer → avg_pool → fc).
import TensorCore

/// Hyper-parameters of the seed's SENet-18. `widths` are the channels of the conv2_x … conv5_x stages (seed: 64, 128,
/// 256, 512; the stem has `widths[0]`). A block whose input and output widths differ has stride 2 and the seed's
/// `conv1x1`/`bn1x1` shortcut; SE layers reduce by `reduction` (seed: 16). `imgSize` is only the nominal input side
/// (the seed's example uses 224; any H, W ≥ 1 runs) for `bench` and the listing.
public struct SENetConfig: Sendable, Equatable {
    public var name: String
    public var widths: [Int]
    public var numClasses: Int
    public var inChannels: Int
    public var reduction: Int
    public var imgSize: Int

    public init(name: String, widths: [Int] = [64, 128, 256, 512], numClasses: Int = 1000, inChannels: Int = 3,
                reduction: Int = 16, imgSize: Int = 224) {
        self.name = name; self.widths = widths; self.numClasses = numClasses; self.inChannels = inChannels
        self.reduction = reduction; self.imgSize = imgSize
    }

    func validate() throws {
        guard widths.count == 4, widths.allSatisfy({ $0 >= 1 }), numClasses >= 1, inChannels >= 1, reduction >= 1 else {
            throw ModelError.invalidConfiguration("\(name): need 4 positive stage widths, classes, channels and reduction, got widths \(widths)")
        }
        if let w = widths.first(where: { $0 / reduction < 1 }) {
            throw ModelError.invalidConfiguration("\(name): SE reduction \(reduction) leaves no hidden features at width \(w)")
        }
    }

    /// (name, in, out) of the eight residual blocks, in the seed's order.
    var blocks: [(name: String, cin: Int, cout: Int)] {
        var b: [(String, Int, Int)] = []
        var cin = widths[0]
        for (stage, w) in widths.enumerated() {
            for j in 1...2 {
                b.append(("conv\(stage + 2)_\(j)", cin, w))
                cin = w
            }
        }
        return b
    }
}

/// The seed's `SELayer(channel, reduction)`: x · sigmoid(fc2(relu(fc1(avg_pool(x))))), fc1/fc2 `nn.Linear` with bias.
public struct SELayer: Layer {
    public var fc1: Linear
    public var fc2: Linear
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(channels: Int, reduction: Int = 16, rng: inout ParameterInit) {
        fc1 = Linear(channels, channels / reduction, rng: &rng)
        fc2 = Linear(channels / reduction, channels, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("fc1", &fc1)
        v.child("fc2", &fc2)
    }

    /// The channel weights sigmoid(fc2(relu(fc1(avg_pool(x))))), [N, C].
    public func scale(_ x: FloatTensor) -> FloatTensor {
        let pooled = Kernels.adaptiveAvgPool2d(x, outputSize: (1, 1))
        let hidden = Kernels.relu(fc1(pooled.reshaped([x.shape[0], x.shape[1]])))
        return fc2(hidden, activation: .sigmoid)
    }

    /// x · scale(x).
    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        Kernels.mul(x, scale(x).reshaped([x.shape[0], x.shape[1], 1, 1]))
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
    }
}

/// The seed's `ResidualBlock(in_channels, outchannels)`, quirks included:
/// relu(bn1(conv1(x))) → relu(bn2(conv2(·))) → selayer → + identity, with no ReLU after the add; when the channel
/// count changes, conv1 has stride 2 and the identity becomes relu(bn1x1(conv1x1(x))) (1×1, stride 2).
public struct SEResidualBlock: Layer {
    /// `conv1x1` + `bn1x1` (only when in ≠ out).
    public var shortcut: ConvBatchNorm?
    /// `conv1` + `bn1` (folded at inference).
    public var first: ConvBatchNorm
    /// `conv2` + `bn2`.
    public var second: ConvBatchNorm
    public var selayer: SELayer
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(inChannels cin: Int, outChannels cout: Int, reduction: Int, rng: inout ParameterInit) {
        let stride = cin == cout ? 1 : 2
        if cin != cout {
            shortcut = ConvBatchNorm(cin, cout, kernel: 1, stride: 2, convKey: "conv1x1", bnKey: "bn1x1", rng: &rng)
        }
        first = ConvBatchNorm(cin, cout, kernel: 3, stride: stride, padding: 1, convKey: "conv1", bnKey: "bn1", rng: &rng)
        second = ConvBatchNorm(cout, cout, kernel: 3, padding: 1, convKey: "conv2", bnKey: "bn2", rng: &rng)
        selayer = SELayer(channels: cout, reduction: reduction, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        shortcut?.visitParameters(&v)
        first.visitParameters(&v)
        second.visitParameters(&v)
        v.child("selayer", &selayer)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let h = second(first(x, activation: .relu), activation: .relu)
        let identity = shortcut.map { $0(x, activation: .relu) } ?? x
        let s = selayer.scale(h)
        // The SE output is materialised only when someone captures it; the block computes identity + h · s[n, c]
        // in one pass.
        if capture != nil { selayer.report(Kernels.mul(h, s.reshaped([h.shape[0], h.shape[1], 1, 1])), to: capture) }
        return report(Kernels.scaledAdd(h, channelScale: s, plus: identity), to: capture)
    }
}

/// The seed's SENet-18 `Model(num_classes)`: conv1 7×7/2 → bn1 → relu → maxpool 3/2/1 → conv2_1 … conv5_2 →
/// avg_pool → fc.
public struct SENet: SingleInputModel {
    public let config: SENetConfig
    /// `conv1` + `bn1`.
    public var stem: ConvBatchNorm
    public var relu = ReLU()
    public var maxpool = MaxPool2d(kernel: 3, stride: 2, padding: 1)
    /// `conv2_1`, `conv2_2`, …, `conv5_2` (attributes of the seed's model, not a Sequential).
    public var blocks: [SEResidualBlock]
    public var avgPool = AdaptiveAvgPool2d(1, 1)
    public var fc: Linear
    let blockNames: [String]

    /// Builds the model with deterministic weights from `seed`.
    public init(_ config: SENetConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    /// Builds the model drawing its tensors from `rng` (seeded, or shapes only).
    public init(_ config: SENetConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        stem = ConvBatchNorm(config.inChannels, config.widths[0], kernel: 7, stride: 2, padding: 3, convKey: "conv1", bnKey: "bn1",
                             rng: &rng)
        var blocks: [SEResidualBlock] = []
        for b in config.blocks {
            blocks.append(SEResidualBlock(inChannels: b.cin, outChannels: b.cout, reduction: config.reduction, rng: &rng))
        }
        self.blocks = blocks
        blockNames = config.blocks.map(\.name)
        fc = Linear(config.widths[3], config.numClasses, rng: &rng).reported()
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "senet" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        stem.visitParameters(&v)
        v.child("relu", &relu)
        v.child("maxpool", &maxpool)
        for i in blocks.indices { v.child(blockNames[i], &blocks[i]) }
        v.child("avg_pool", &avgPool)
        v.child("fc", &fc)
    }

    public var inputSpecs: [TensorSpec] {
        [TensorSpec("input", [.batch, .fixed(config.inChannels), .free("H", example: config.imgSize), .free("W", example: config.imgSize)],
                    summary: "images, NCHW")]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: config.numClasses)] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var x = relu.report(stem(input, activation: .relu), to: capture)  // relu fused into the stem's epilogue
        x = maxpool(x, capture: capture)
        for block in blocks { x = block(x, capture: capture) }
        x = avgPool(x, capture: capture)
        return fc(x.reshaped([x.shape[0], x.shape[1]]), capture: capture)
    }
}

extension Kernels {
    /// residual + x · scale[n, c] for x, residual [N, C, H, W] and scale [N, C]: the SE layer's rescale and the
    /// block's residual add in one pass, rounded as PyTorch's `identity + x * s` is (product first, then sum).
    static func scaledAdd(_ x: FloatTensor, channelScale scale: FloatTensor, plus residual: FloatTensor) -> FloatTensor {
        precondition(x.rank == 4 && residual.shape == x.shape && scale.count == x.shape[0] * x.shape[1],
                     "scaledAdd: x \(x.shape), scale \(scale.shape), residual \(residual.shape)")
        let planes = x.shape[0] * x.shape[1], spatial = x.shape[2] * x.shape[3]
        return FloatTensor(shape: x.shape) { ob in
            x.data.withUnsafeBufferPointer { xb in residual.data.withUnsafeBufferPointer { rb in
                for p in 0..<planes {
                    let s = scale.data[p], base = p * spatial
                    for i in base..<(base + spatial) {
                        let product = xb[i] * s
                        ob[i] = rb[i] + product
                    }
                }
            }}
        }
    }
}
