import TensorCore

/// Models by upstream name. Each entry knows its parameter list without building the model (so listing
/// ViT-H/14 does not allocate 2.5 GB); `make` builds it with seeded weights.
public enum ModelRegistry {
    public enum Architecture: Sendable, Equatable {
        case resnet(ResNetConfig)
        case vit(ViTConfig)
        case senet(SENetConfig)
    }

    public struct Entry: Sendable {
        public let name: String
        public let architecture: Architecture
        public let summary: String

        public var parameterSpecs: [ParameterSpec] {
            switch architecture {
            case .resnet(let c): return c.parameterSpecs
            case .vit(let c): return c.parameterSpecs
            case .senet(let c): return c.parameterSpecs
            }
        }

        /// Trainable scalars (buffers excluded).
        public var parameterCount: Int {
            parameterSpecs.filter { $0.kind == .parameter }.reduce(0) { $0 + $1.elementCount }
        }

        public func make(seed: UInt64 = 0) throws -> any Model {
            switch architecture {
            case .resnet(let c): return try ResNet(c, seed: seed)
            case .vit(let c): return try VisionTransformer(c, seed: seed)
            case .senet(let c): return try SENet(c, seed: seed)
            }
        }
    }

    /// The tiny configurations of `Tools/make_model_fixtures.py` (same code paths, small widths) — for tests and
    /// CLI parity runs on the committed fixtures.
    public static let tinyResNet18 = ResNetConfig(name: "resnet18_tiny", layers: [2, 2, 2, 2], widths: [4, 8, 16, 32], numClasses: 10)
    public static let tinyResNet18CBAM = ResNetConfig(name: "resnet18_cbam_tiny", layers: [2, 2, 2, 2], widths: [16, 16, 32, 32],
                                                      numClasses: 10, cbam: true)
    public static let tinyResNet50 = ResNetConfig(name: "resnet50_tiny", block: .bottleneck, layers: [3, 4, 6, 3],
                                                  widths: [8, 12, 16, 20], numClasses: 10)
    public static let tinyResNet50CBAM = ResNetConfig(name: "resnet50_cbam_tiny", block: .bottleneck, layers: [3, 4, 6, 3],
                                                      widths: [8, 12, 16, 20], numClasses: 10, cbam: true)
    public static let tinySENet18 = SENetConfig(name: "senet18_tiny", widths: [16, 20, 24, 32], numClasses: 10)
    public static let tinyViT = ViTConfig(name: "vit_tiny_patch8_32", imgSize: 32, patchSize: 8, numClasses: 10, embedDim: 32,
                                          depth: 2, numHeads: 4, representationSize: 16)

    public static let entries: [Entry] = {
        var e: [Entry] = [
            Entry(name: "resnet18", architecture: .resnet(.resnet18), summary: "torchvision ResNet-18, BasicBlock [2,2,2,2]"),
            Entry(name: "resnet34", architecture: .resnet(.resnet34), summary: "torchvision ResNet-34, BasicBlock [3,4,6,3]"),
            Entry(name: "resnet18_cbam", architecture: .resnet(.resnet18CBAM), summary: "seed CBAM-ResNet-18 (ca + sa in every block)"),
            Entry(name: "resnet34_cbam", architecture: .resnet(.resnet34CBAM), summary: "seed CBAM-ResNet-34 (ca + sa in every block)"),
            Entry(name: "resnet50", architecture: .resnet(.resnet50), summary: "torchvision ResNet-50, Bottleneck [3,4,6,3]"),
            Entry(name: "resnet101", architecture: .resnet(.resnet101), summary: "torchvision ResNet-101, Bottleneck [3,4,23,3]"),
            Entry(name: "resnet152", architecture: .resnet(.resnet152), summary: "torchvision ResNet-152, Bottleneck [3,8,36,3]"),
            Entry(name: "resnet50_cbam", architecture: .resnet(.resnet50CBAM), summary: "seed CBAM-ResNet-50 (ca + sa after bn3 of every Bottleneck)"),
            Entry(name: "resnet101_cbam", architecture: .resnet(.resnet101CBAM), summary: "seed CBAM-ResNet-101 (ca + sa after bn3 of every Bottleneck)"),
            Entry(name: "resnet152_cbam", architecture: .resnet(.resnet152CBAM), summary: "seed CBAM-ResNet-152 (ca + sa after bn3 of every Bottleneck)"),
            Entry(name: "senet18", architecture: .senet(.senet18), summary: "seed SENet-18 (ResidualBlocks conv2_1…conv5_2 with SELayer)"),
        ]
        for c in ViTConfig.named {
            let head = c.representationSize.map { ", pre_logits \($0)" } ?? ""
            e.append(Entry(name: c.name, architecture: .vit(c),
                           summary: "timm ViT \(c.embedDim)d×\(c.depth), patch \(c.patchSize), \(c.numClasses) classes\(head)"))
        }
        e += [
            Entry(name: tinyResNet18.name, architecture: .resnet(tinyResNet18), summary: "test config: ResNet-18 widths [4,8,16,32], 10 classes"),
            Entry(name: tinyResNet18CBAM.name, architecture: .resnet(tinyResNet18CBAM), summary: "test config: CBAM-ResNet-18 widths [16,16,32,32], 10 classes"),
            Entry(name: tinyResNet50.name, architecture: .resnet(tinyResNet50), summary: "test config: ResNet-50 planes [8,12,16,20], 10 classes"),
            Entry(name: tinyResNet50CBAM.name, architecture: .resnet(tinyResNet50CBAM), summary: "test config: CBAM-ResNet-50 planes [8,12,16,20], 10 classes"),
            Entry(name: tinySENet18.name, architecture: .senet(tinySENet18), summary: "test config: SENet-18 widths [16,20,24,32], 10 classes"),
            Entry(name: tinyViT.name, architecture: .vit(tinyViT), summary: "test config: ViT img 32, patch 8, dim 32, depth 2, 4 heads, pre_logits 16"),
        ]
        return e
    }()

    public static var names: [String] { entries.map(\.name) }

    public static func entry(_ name: String) throws -> Entry {
        guard let e = entries.first(where: { $0.name == name }) else {
            throw ModelError.unknownModel(name: name, available: names)
        }
        return e
    }

    /// Builds the model registered as `name` with seeded weights.
    public static func make(name: String, seed: UInt64 = 0) throws -> any Model {
        try entry(name).make(seed: seed)
    }
}
