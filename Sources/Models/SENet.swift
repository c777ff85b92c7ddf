// Seed 000's SENet-18 (`Model`: conv1 → maxpool → conv2_1 … conv5_2 ResidualBlocks with SELayer → avg_pool → fc).
import TensorCore

/// Hyper-parameters of the seed's SENet-18. `widths` are the channels of the conv2_x … conv5_x stages (seed: 64, 128,
/// 256, 512; the stem has `widths[0]`). A block whose input and output widths differ has stride 2 and the seed's
/// `conv1x1`/`bn1x1` shortcut; SE layers reduce by `reduction` (seed: 16).
public struct SENetConfig: Sendable, Equatable {
    public var name: String
    public var widths: [Int]
    public var numClasses: Int
    public var inChannels: Int
    public var reduction: Int

    public init(name: String, widths: [Int] = [64, 128, 256, 512], numClasses: Int = 1000, inChannels: Int = 3,
                reduction: Int = 16) {
        self.name = name; self.widths = widths; self.numClasses = numClasses; self.inChannels = inChannels
        self.reduction = reduction
    }

    /// The seed's `Model()` (its default `num_classes=1000`).
    public static let senet18 = SENetConfig(name: "senet18")

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

    /// Registered tensors in `state_dict()` order, without building the model.
    public var parameterSpecs: [ParameterSpec] {
        var s: [ParameterSpec] = []
        func conv(_ k: String, _ o: Int, _ i: Int, _ ks: Int) { s.append(ParameterSpec(key: k + ".weight", shape: [o, i, ks, ks])) }
        func linear(_ k: String, _ o: Int, _ i: Int) {
            s += [ParameterSpec(key: k + ".weight", shape: [o, i]), ParameterSpec(key: k + ".bias", shape: [o])]
        }
        func bn(_ k: String, _ c: Int) {
            s += [ParameterSpec(key: k + ".weight", shape: [c]), ParameterSpec(key: k + ".bias", shape: [c]),
                  ParameterSpec(key: k + ".running_mean", shape: [c], kind: .buffer),
                  ParameterSpec(key: k + ".running_var", shape: [c], kind: .buffer),
                  ParameterSpec(key: k + ".num_batches_tracked", shape: [], dtype: .int64, kind: .buffer)]
        }
        conv("conv1", widths[0], inChannels, 7); bn("bn1", widths[0])
        for (p, cin, cout) in blocks {
            if cin != cout { conv(p + ".conv1x1", cout, cin, 1); bn(p + ".bn1x1", cout) }
            conv(p + ".conv1", cout, cin, 3); bn(p + ".bn1", cout)
            conv(p + ".conv2", cout, cout, 3); bn(p + ".bn2", cout)
            linear(p + ".selayer.fc1", cout / reduction, cout); linear(p + ".selayer.fc2", cout, cout / reduction)
        }
        linear("fc", numClasses, widths[3])
        return s
    }
}

/// The seed's `SELayer(channel, reduction)`: x · sigmoid(fc2(relu(fc1(avg_pool(x))))), fc1/fc2 `nn.Linear` with bias.
public struct SELayer: ParameterContainer, Sendable {
    public var fc1: Linear
    public var fc2: Linear

    public init(channels: Int, reduction: Int = 16, rng: inout SeededGenerator) {
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
}

/// The seed's `ResidualBlock(in_channels, outchannels)`, quirks included:
/// relu(bn1(conv1(x))) → relu(bn2(conv2(·))) → selayer → + identity, with no ReLU after the add; when the channel
/// count changes, conv1 has stride 2 and the identity becomes relu(bn1x1(conv1x1(x))) (1×1, stride 2).
public struct SEResidualBlock: ParameterContainer, Sendable {
    /// `conv1x1` + `bn1x1` (only when in ≠ out).
    public var shortcut: ConvBatchNorm?
    /// `conv1` + `bn1` (folded at inference).
    public var first: ConvBatchNorm
    /// `conv2` + `bn2`.
    public var second: ConvBatchNorm
    public var selayer: SELayer

    public init(inChannels cin: Int, outChannels cout: Int, reduction: Int, rng: inout SeededGenerator) {
        let stride = cin == cout ? 1 : 2
        if cin != cout {
            shortcut = ConvBatchNorm(conv: Conv2d(cin, cout, kernel: 1, stride: 2, bias: false, rng: &rng),
                                     bn: BatchNorm2d(cout), convKey: "conv1x1", bnKey: "bn1x1")
        }
        first = ConvBatchNorm(conv: Conv2d(cin, cout, kernel: 3, stride: stride, padding: 1, bias: false, rng: &rng),
                              bn: BatchNorm2d(cout), convKey: "conv1", bnKey: "bn1")
        second = ConvBatchNorm(conv: Conv2d(cout, cout, kernel: 3, padding: 1, bias: false, rng: &rng),
                               bn: BatchNorm2d(cout), convKey: "conv2", bnKey: "bn2")
        selayer = SELayer(channels: cout, reduction: reduction, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        shortcut?.visitParameters(&v)
        first.visitParameters(&v)
        second.visitParameters(&v)
        v.child("selayer", &selayer)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture? = nil, path: String = "") -> FloatTensor {
        let h = second(first(x, activation: .relu), activation: .relu)
        let identity = shortcut.map { $0(x, activation: .relu) } ?? x
        let s = selayer.scale(h)
        // identity + h · s[n, c], one pass; the SE output itself only when someone captures it.
        if let capture { capture(path + "selayer", Kernels.mul(h, s.reshaped([h.shape[0], h.shape[1], 1, 1]))) }
        return Kernels.scaledAdd(h, channelScale: s, plus: identity)
    }
}

/// The seed's SENet-18 `Model(num_classes)`.
public struct SENet: Model {
    public let config: SENetConfig
    /// `conv1` + `bn1`.
    public var stem: ConvBatchNorm
    /// `conv2_1`, `conv2_2`, …, `conv5_2`.
    public var blocks: [SEResidualBlock]
    public var fc: Linear
    let blockNames: [String]

    public init(_ config: SENetConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rng = SeededGenerator(seed: seed)
        stem = ConvBatchNorm(conv: Conv2d(config.inChannels, config.widths[0], kernel: 7, stride: 2, padding: 3, bias: false, rng: &rng),
                             bn: BatchNorm2d(config.widths[0]), convKey: "conv1", bnKey: "bn1")
        var blocks: [SEResidualBlock] = []
        for b in config.blocks {
            blocks.append(SEResidualBlock(inChannels: b.cin, outChannels: b.cout, reduction: config.reduction, rng: &rng))
        }
        self.blocks = blocks
        blockNames = config.blocks.map(\.name)
        fc = Linear(config.widths[3], config.numClasses, rng: &rng)
    }

    public var name: String { config.name }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        stem.visitParameters(&v)
        for i in blocks.indices { v.child(blockNames[i], &blocks[i]) }
        v.child("fc", &fc)
    }

    public var inputDescription: String { "[N, \(config.inChannels), H, W] with H, W ≥ 1" }

    public var activationPaths: [String] {
        ["relu", "maxpool"] + blockNames.flatMap { [$0 + ".selayer", $0] } + ["avg_pool", "fc"]
    }

    public func validateInput(_ shape: [Int]) throws {
        guard shape.count == 4, shape[0] >= 1, shape[1] == config.inChannels, shape[2] >= 1, shape[3] >= 1 else {
            throw ModelError.invalidInput(model: name, expected: inputDescription, found: shape)
        }
    }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var x = stem(input, activation: .relu)
        capture?("relu", x)
        x = Kernels.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        capture?("maxpool", x)
        for (name, block) in zip(blockNames, blocks) {
            x = block(x, capture: capture, path: name + ".")
            capture?(name, x)
        }
        x = Kernels.adaptiveAvgPool2d(x, outputSize: (1, 1))
        capture?("avg_pool", x)
        x = fc(x.reshaped([x.shape[0], x.shape[1]]))
        capture?("fc", x)
        return x
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
