// torchvision ResNet layout, BasicBlock (ResNet-18 [2,2,2,2], ResNet-34 [3,4,6,3]) or Bottleneck (ResNet-50
// [3,4,6,3], ResNet-101 [3,4,23,3], ResNet-152 [3,8,36,3]); optional CBAM per the seed.
import TensorCore

/// torchvision's two residual block types.
public enum ResNetBlockKind: String, Sendable, Equatable {
    /// conv3×3(stride) → conv3×3, expansion 1.
    case basic
    /// conv1×1 → conv3×3(stride) → conv1×1 (torchvision v1.5: stride on the 3×3), expansion 4.
    case bottleneck

    public var expansion: Int { self == .basic ? 1 : 4 }
}

/// Hyper-parameters of a ResNet. `widths` are the planes of layer1…layer4 (torchvision: 64…512); a stage
/// outputs `widths[i] · block.expansion` channels; the stem has `widths[0]` channels. With `cbam`, every block applies
/// ChannelAttention then SpatialAttention after its last batch norm and before the residual add, as the seed's
/// CBAM-ResNet does.
public struct ResNetConfig: Sendable, Equatable {
    public var name: String
    public var block: ResNetBlockKind
    public var layers: [Int]
    public var widths: [Int]
    public var numClasses: Int
    public var inChannels: Int
    public var cbam: Bool
    public var cbamRatio: Int
    public var spatialKernel: Int

    public init(name: String, block: ResNetBlockKind = .basic, layers: [Int], widths: [Int] = [64, 128, 256, 512],
                numClasses: Int = 1000, inChannels: Int = 3, cbam: Bool = false, cbamRatio: Int = 16, spatialKernel: Int = 7) {
        self.name = name; self.block = block; self.layers = layers; self.widths = widths; self.numClasses = numClasses
        self.inChannels = inChannels; self.cbam = cbam; self.cbamRatio = cbamRatio; self.spatialKernel = spatialKernel
    }

    public static let resnet18 = ResNetConfig(name: "resnet18", layers: [2, 2, 2, 2])
    public static let resnet34 = ResNetConfig(name: "resnet34", layers: [3, 4, 6, 3])
    public static let resnet18CBAM = ResNetConfig(name: "resnet18_cbam", layers: [2, 2, 2, 2], cbam: true)
    public static let resnet34CBAM = ResNetConfig(name: "resnet34_cbam", layers: [3, 4, 6, 3], cbam: true)
    public static let resnet50 = ResNetConfig(name: "resnet50", block: .bottleneck, layers: [3, 4, 6, 3])
    public static let resnet101 = ResNetConfig(name: "resnet101", block: .bottleneck, layers: [3, 4, 23, 3])
    public static let resnet152 = ResNetConfig(name: "resnet152", block: .bottleneck, layers: [3, 8, 36, 3])
    public static let resnet50CBAM = ResNetConfig(name: "resnet50_cbam", block: .bottleneck, layers: [3, 4, 6, 3], cbam: true)
    public static let resnet101CBAM = ResNetConfig(name: "resnet101_cbam", block: .bottleneck, layers: [3, 4, 23, 3], cbam: true)
    public static let resnet152CBAM = ResNetConfig(name: "resnet152_cbam", block: .bottleneck, layers: [3, 8, 36, 3], cbam: true)

    func validate() throws {
        guard layers.count == 4, widths.count == 4, layers.allSatisfy({ $0 >= 1 }), widths.allSatisfy({ $0 >= 1 }),
              numClasses >= 1, inChannels >= 1 else {
            throw ModelError.invalidConfiguration("\(name): need 4 stages with positive depths/widths, got layers \(layers), widths \(widths)")
        }
        if cbam, let w = widths.first(where: { $0 * block.expansion / cbamRatio < 1 }) {
            throw ModelError.invalidConfiguration("\(name): CBAM ratio \(cbamRatio) leaves no hidden channels at width \(w * block.expansion)")
        }
    }

    /// Registered tensors in `state_dict()` order, without building the model.
    public var parameterSpecs: [ParameterSpec] {
        var s: [ParameterSpec] = []
        func conv(_ k: String, _ o: Int, _ i: Int, _ ks: Int) { s.append(ParameterSpec(key: k + ".weight", shape: [o, i, ks, ks])) }
        func bn(_ k: String, _ c: Int) {
            s += [ParameterSpec(key: k + ".weight", shape: [c]), ParameterSpec(key: k + ".bias", shape: [c]),
                  ParameterSpec(key: k + ".running_mean", shape: [c], kind: .buffer),
                  ParameterSpec(key: k + ".running_var", shape: [c], kind: .buffer),
                  ParameterSpec(key: k + ".num_batches_tracked", shape: [], dtype: .int64, kind: .buffer)]
        }
        conv("conv1", widths[0], inChannels, 7); bn("bn1", widths[0])
        var inplanes = widths[0]
        for (stage, (depth, planes)) in zip(layers, widths).enumerated() {
            let out = planes * block.expansion
            for b in 0..<depth {
                let p = "layer\(stage + 1).\(b)", cin = b == 0 ? inplanes : out
                switch block {
                case .basic:
                    conv(p + ".conv1", planes, cin, 3); bn(p + ".bn1", planes)
                    conv(p + ".conv2", planes, planes, 3); bn(p + ".bn2", planes)
                case .bottleneck:
                    conv(p + ".conv1", planes, cin, 1); bn(p + ".bn1", planes)
                    conv(p + ".conv2", planes, planes, 3); bn(p + ".bn2", planes)
                    conv(p + ".conv3", out, planes, 1); bn(p + ".bn3", out)
                }
                if cbam {
                    conv(p + ".ca.fc.0", out / cbamRatio, out, 1); conv(p + ".ca.fc.2", out, out / cbamRatio, 1)
                    conv(p + ".sa.conv1", 1, 2, spatialKernel)
                }
                if b == 0 && (stage > 0 || inplanes != out) { conv(p + ".downsample.0", out, inplanes, 1); bn(p + ".downsample.1", out) }
            }
            inplanes = out
        }
        let features = widths[3] * block.expansion
        s += [ParameterSpec(key: "fc.weight", shape: [numClasses, features]), ParameterSpec(key: "fc.bias", shape: [numClasses])]
        return s
    }
}

/// One residual block of either kind, registered under torchvision's keys:
/// - BasicBlock: conv1 3×3(stride) → bn1 → relu → conv2 3×3 → bn2;
/// - Bottleneck: conv1 1×1 → bn1 → relu → conv2 3×3(stride) → bn2 → relu → conv3 1×1 (×4) → bn3;
/// then [CBAM: ca, sa] → + identity (or `downsample`) → relu.
public struct ResNetBlock: ParameterContainer, Sendable {
    /// `conv1` + `bn1` (folded at inference).
    public var first: ConvBatchNorm
    /// `conv2` + `bn2`.
    public var second: ConvBatchNorm
    /// `conv3` + `bn3` (Bottleneck only).
    public var third: ConvBatchNorm?
    /// `ca` (CBAM only).
    public var ca: ChannelAttention?
    /// `sa` (CBAM only).
    public var sa: SpatialAttention?
    /// `downsample.0` (1×1 conv, stride s, no bias) + `downsample.1` (BN) when the shape changes.
    public var downsample: ConvBatchNorm?

    public init(inplanes: Int, planes: Int, stride: Int, config: ResNetConfig, rng: inout SeededGenerator) {
        let out = planes * config.block.expansion
        func unit(_ cin: Int, _ cout: Int, _ k: Int, _ stride: Int, _ i: Int) -> ConvBatchNorm {
            ConvBatchNorm(conv: Conv2d(cin, cout, kernel: k, stride: stride, padding: k / 2, bias: false, rng: &rng),
                          bn: BatchNorm2d(cout), convKey: "conv\(i)", bnKey: "bn\(i)")
        }
        switch config.block {
        case .basic:
            first = unit(inplanes, planes, 3, stride, 1)
            second = unit(planes, planes, 3, 1, 2)
        case .bottleneck:
            first = unit(inplanes, planes, 1, 1, 1)
            second = unit(planes, planes, 3, stride, 2)
            third = unit(planes, out, 1, 1, 3)
        }
        if config.cbam {
            ca = ChannelAttention(channels: out, ratio: config.cbamRatio, rng: &rng)
            sa = SpatialAttention(kernelSize: config.spatialKernel, rng: &rng)
        }
        if stride != 1 || inplanes != out {
            downsample = ConvBatchNorm(conv: Conv2d(inplanes, out, kernel: 1, stride: stride, bias: false, rng: &rng),
                                       bn: BatchNorm2d(out), convKey: "downsample.0", bnKey: "downsample.1")
        }
    }

    public var conv1: Conv2d { get { first.conv } set { first.conv = newValue } }
    public var bn1: BatchNorm2d { get { first.bn } set { first.bn = newValue } }
    public var conv2: Conv2d { get { second.conv } set { second.conv = newValue } }
    public var bn2: BatchNorm2d { get { second.bn } set { second.bn = newValue } }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        first.visitParameters(&v)
        second.visitParameters(&v)
        third?.visitParameters(&v)
        v.child("ca", &ca)
        v.child("sa", &sa)
        downsample?.visitParameters(&v)
    }

    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        let identity = downsample.map { $0(x) } ?? x
        var h = first(x, activation: .relu)
        let last: ConvBatchNorm
        if let third {
            h = second(h, activation: .relu)
            last = third
        } else {
            last = second
        }
        guard let ca, let sa else {
            // Residual add and ReLU fused into the last convolution's epilogue.
            return last(h, residual: identity, activation: .relu)
        }
        var out = last(h)
        out = Kernels.mul(ca(out), out)
        out = Kernels.mul(sa(out), out)
        Kernels.addInPlace(&out, identity)
        return Kernels.relu(out)
    }
}

/// torchvision `ResNet`: conv1 7×7/2 → bn1 → relu → maxpool 3/2/1 → layer1…4 → avgpool → fc.
public struct ResNet: Model {
    public let config: ResNetConfig
    /// `conv1` + `bn1`.
    public var stem: ConvBatchNorm
    public var layer1: [ResNetBlock]
    public var layer2: [ResNetBlock]
    public var layer3: [ResNetBlock]
    public var layer4: [ResNetBlock]
    public var fc: Linear

    /// Builds the model with deterministic weights from `seed`.
    public init(_ config: ResNetConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        var rng = SeededGenerator(seed: seed)
        let w = config.widths
        stem = ConvBatchNorm(conv: Conv2d(config.inChannels, w[0], kernel: 7, stride: 2, padding: 3, bias: false, rng: &rng),
                             bn: BatchNorm2d(w[0]), convKey: "conv1", bnKey: "bn1")
        var inplanes = w[0]
        func stage(_ i: Int, stride: Int) -> [ResNetBlock] {
            var blocks: [ResNetBlock] = []
            for b in 0..<config.layers[i] {
                blocks.append(ResNetBlock(inplanes: inplanes, planes: w[i], stride: b == 0 ? stride : 1, config: config, rng: &rng))
                inplanes = w[i] * config.block.expansion
            }
            return blocks
        }
        layer1 = stage(0, stride: 1)
        layer2 = stage(1, stride: 2)
        layer3 = stage(2, stride: 2)
        layer4 = stage(3, stride: 2)
        fc = Linear(w[3] * config.block.expansion, config.numClasses, rng: &rng)
    }

    public var name: String { config.name }
    public var conv1: Conv2d { get { stem.conv } set { stem.conv = newValue } }
    public var bn1: BatchNorm2d { get { stem.bn } set { stem.bn = newValue } }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        stem.visitParameters(&v)
        v.children("layer1", &layer1)
        v.children("layer2", &layer2)
        v.children("layer3", &layer3)
        v.children("layer4", &layer4)
        v.child("fc", &fc)
    }

    public var inputDescription: String { "[N, \(config.inChannels), H, W] with H, W ≥ 1" }

    public var activationPaths: [String] {
        var paths = ["relu", "maxpool"]
        for (i, depth) in config.layers.enumerated() {
            paths += (0..<depth).map { "layer\(i + 1).\($0)" }
            paths.append("layer\(i + 1)")
        }
        return paths + ["avgpool", "fc"]
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
        for (i, layer) in [layer1, layer2, layer3, layer4].enumerated() {
            for (b, block) in layer.enumerated() {
                x = block(x)
                capture?("layer\(i + 1).\(b)", x)
            }
            capture?("layer\(i + 1)", x)
        }
        x = Kernels.adaptiveAvgPool2d(x, outputSize: (1, 1))
        capture?("avgpool", x)
        x = fc(x.reshaped([x.shape[0], x.shape[1]]))
        capture?("fc", x)
        return x
    }
}
