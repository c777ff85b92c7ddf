// torchvision ResNet layout, BasicBlock (ResNet-18 [2,2,2,2], ResNet-34 [3,4,6,3]) or Bottleneck (ResNet-50
// [3,4,6,3], ResNet-101 [3,4,23,3], ResNet-152 [3,8,36,3]); optional CBAM per the seed.
import TensorCore

/// torchvision's two residual block types.
public enum ResNetBlockKind: String, Sendable, Equatable, CaseIterable {
    /// conv3×3(stride) → conv3×3, expansion 1.
    case basic
    /// conv1×1 → conv3×3(stride) → conv1×1, expansion 4 (torchvision v1.5: the stride is on the 3×3).
    case bottleneck

    public var expansion: Int { self == .basic ? 1 : 4 }
}

/// Hyper-parameters of a ResNet. `widths` are the planes of layer1…layer4 (torchvision: 64…512); a stage outputs
/// `widths[i] · block.expansion` channels; the stem has `widths[0]` channels. With `cbam`, every block applies
/// ChannelAttention then SpatialAttention after its last batch norm (`bn2`, or `bn3` in a Bottleneck) and before the
/// residual add, as the seed's CBAM-ResNet does. `imgSize` is only the nominal input side (any H, W ≥ 1 runs) used by
/// `bench` and the model listing.
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
    public var imgSize: Int

    public init(name: String, block: ResNetBlockKind = .basic, layers: [Int], widths: [Int] = [64, 128, 256, 512],
                numClasses: Int = 1000, inChannels: Int = 3, cbam: Bool = false, cbamRatio: Int = 16, spatialKernel: Int = 7,
                imgSize: Int = 224) {
        self.name = name; self.block = block; self.layers = layers; self.widths = widths; self.numClasses = numClasses
        self.inChannels = inChannels; self.cbam = cbam; self.cbamRatio = cbamRatio; self.spatialKernel = spatialKernel
        self.imgSize = imgSize
    }

    func validate() throws {
        guard layers.count == 4, widths.count == 4, layers.allSatisfy({ $0 >= 1 }), widths.allSatisfy({ $0 >= 1 }),
              numClasses >= 1, inChannels >= 1, cbamRatio >= 1, spatialKernel >= 1, spatialKernel % 2 == 1 else {
            throw ModelError.invalidConfiguration("\(name): need 4 stages with positive depths/widths and an odd spatial kernel, got layers \(layers), widths \(widths), spatial_kernel \(spatialKernel)")
        }
        if cbam, let w = widths.first(where: { $0 * block.expansion / cbamRatio < 1 }) {
            throw ModelError.invalidConfiguration("\(name): CBAM ratio \(cbamRatio) leaves no hidden channels at width \(w * block.expansion)")
        }
    }
}

/// One residual block of either kind, registered under torchvision's keys:
/// - BasicBlock: conv1 3×3(stride) → bn1 → relu → conv2 3×3 → bn2;
/// - Bottleneck: conv1 1×1 → bn1 → relu → conv2 3×3(stride) → bn2 → relu → conv3 1×1 (planes·4) → bn3;
/// then [CBAM: out = ca(out)·out; out = sa(out)·out] → + identity (or `downsample(x)`) → relu.
public struct ResNetBlock: Layer {
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
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    /// CBAM settings of a block: ChannelAttention reduction ratio and SpatialAttention kernel size.
    public struct CBAM: Sendable, Equatable {
        public var ratio: Int
        public var spatialKernel: Int
        public init(ratio: Int = 16, spatialKernel: Int = 7) { self.ratio = ratio; self.spatialKernel = spatialKernel }
    }

    public init(_ kind: ResNetBlockKind = .basic, inplanes: Int, planes: Int, stride: Int, cbam: CBAM? = nil,
                rng: inout ParameterInit) {
        let out = planes * kind.expansion
        func unit(_ cin: Int, _ cout: Int, kernel k: Int, stride: Int, _ i: Int) -> ConvBatchNorm {
            ConvBatchNorm(cin, cout, kernel: k, stride: stride, padding: k / 2, convKey: "conv\(i)", bnKey: "bn\(i)", rng: &rng)
        }
        switch kind {
        case .basic:
            first = unit(inplanes, planes, kernel: 3, stride: stride, 1)
            second = unit(planes, planes, kernel: 3, stride: 1, 2)
        case .bottleneck:
            first = unit(inplanes, planes, kernel: 1, stride: 1, 1)
            second = unit(planes, planes, kernel: 3, stride: stride, 2)
            third = unit(planes, out, kernel: 1, stride: 1, 3)
        }
        if let cbam {
            ca = ChannelAttention(channels: out, ratio: cbam.ratio, rng: &rng)
            sa = SpatialAttention(kernelSize: cbam.spatialKernel, rng: &rng)
        }
        if stride != 1 || inplanes != out {
            downsample = ConvBatchNorm(inplanes, out, kernel: 1, stride: stride, convKey: "downsample.0", bnKey: "downsample.1", rng: &rng)
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

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(self(x), to: capture)
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
public struct ResNet: SingleInputModel {
    public let config: ResNetConfig
    /// `conv1` + `bn1`.
    public var stem: ConvBatchNorm
    public var relu = ReLU()
    public var maxpool = MaxPool2d(kernel: 3, stride: 2, padding: 1)
    public var layer1: Sequential<ResNetBlock>
    public var layer2: Sequential<ResNetBlock>
    public var layer3: Sequential<ResNetBlock>
    public var layer4: Sequential<ResNetBlock>
    public var avgpool = AdaptiveAvgPool2d(1, 1)
    public var fc: Linear

    /// Builds the model with deterministic weights from `seed`.
    public init(_ config: ResNetConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    /// Builds the model drawing its tensors from `rng` (seeded, or shapes only).
    public init(_ config: ResNetConfig, rng: inout ParameterInit) throws {
        try config.validate()
        self.config = config
        let w = config.widths
        let cbam = config.cbam ? ResNetBlock.CBAM(ratio: config.cbamRatio, spatialKernel: config.spatialKernel) : nil
        stem = ConvBatchNorm(config.inChannels, w[0], kernel: 7, stride: 2, padding: 3, convKey: "conv1", bnKey: "bn1", rng: &rng)
        var inplanes = w[0]
        func stage(_ i: Int, stride: Int) -> Sequential<ResNetBlock> {
            var blocks: [ResNetBlock] = []
            for b in 0..<config.layers[i] {
                blocks.append(ResNetBlock(config.block, inplanes: inplanes, planes: w[i], stride: b == 0 ? stride : 1, cbam: cbam,
                                          rng: &rng))
                inplanes = w[i] * config.block.expansion
            }
            return Sequential(blocks)
        }
        layer1 = stage(0, stride: 1)
        layer2 = stage(1, stride: 2)
        layer3 = stage(2, stride: 2)
        layer4 = stage(3, stride: 2)
        fc = Linear(w[3] * config.block.expansion, config.numClasses, rng: &rng).reported()
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "resnet" }
    public var conv1: Conv2d { get { stem.conv } set { stem.conv = newValue } }
    public var bn1: BatchNorm2d { get { stem.bn } set { stem.bn = newValue } }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        stem.visitParameters(&v)
        v.child("relu", &relu)
        v.child("maxpool", &maxpool)
        v.child("layer1", &layer1)
        v.child("layer2", &layer2)
        v.child("layer3", &layer3)
        v.child("layer4", &layer4)
        v.child("avgpool", &avgpool)
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
        x = layer1(x, capture: capture)
        x = layer2(x, capture: capture)
        x = layer3(x, capture: capture)
        x = layer4(x, capture: capture)
        x = avgpool(x, capture: capture)
        return fc(x.reshaped([x.shape[0], x.shape[1]]), capture: capture)
    }
}
