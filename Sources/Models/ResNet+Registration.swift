// Registration of the torchvision ResNets (BasicBlock 18/34, Bottleneck 50/101/152) and the seed's CBAM variants.

extension ResNet {
    public static let family = ModelFamily(
        name: "resnet",
        summary: "torchvision ResNet with BasicBlocks or Bottlenecks; optional CBAM (seed 000) in every block",
        options: [
            .numClasses(),
            ModelOption("in_chans", .int(1...4096), default: .int(3), help: "input channels"),
            ModelOption("block", .choice(ResNetBlockKind.allCases.map(\.rawValue)), default: .string("basic"),
                        help: "residual block: basic (3×3, 3×3) or bottleneck (1×1, 3×3 with the stride, 1×1 ×4)"),
            ModelOption("layers", .intList(1...1024), default: .intList([2, 2, 2, 2]), help: "blocks in layer1…layer4"),
            ModelOption("widths", .intList(1...65536), default: .intList([64, 128, 256, 512]), help: "planes of layer1…layer4"),
            ModelOption("cbam", .bool, default: .bool(false), help: "channel + spatial attention after the last BN (bn2 / bn3) of every block"),
            ModelOption("cbam_ratio", .int(1...65536), default: .int(16), help: "CBAM channel reduction ratio"),
            ModelOption("spatial_kernel", .int(1...63), default: .int(7), help: "CBAM spatial attention kernel (odd)"),
            ModelOption("img_size", .int(1...65536), default: .int(224), help: "nominal input side for bench and listings (any H, W runs)"),
        ],
        configurations: [
            .init("resnet18", "torchvision ResNet-18, BasicBlock [2,2,2,2]"),
            .init("resnet34", "torchvision ResNet-34, BasicBlock [3,4,6,3]", ["layers": .intList([3, 4, 6, 3])]),
            .init("resnet18_cbam", "seed CBAM-ResNet-18 (ca + sa in every block)", ["cbam": .bool(true)]),
            .init("resnet34_cbam", "seed CBAM-ResNet-34 (ca + sa in every block)", ["layers": .intList([3, 4, 6, 3]), "cbam": .bool(true)]),
            .init("resnet50", "torchvision ResNet-50, Bottleneck [3,4,6,3]", bottleneck([3, 4, 6, 3])),
            .init("resnet101", "torchvision ResNet-101, Bottleneck [3,4,23,3]", bottleneck([3, 4, 23, 3])),
            .init("resnet152", "torchvision ResNet-152, Bottleneck [3,8,36,3]", bottleneck([3, 8, 36, 3])),
            .init("resnet50_cbam", "seed CBAM-ResNet-50 (ca + sa after bn3 of every Bottleneck)", bottleneck([3, 4, 6, 3], cbam: true)),
            .init("resnet101_cbam", "seed CBAM-ResNet-101 (ca + sa after bn3 of every Bottleneck)", bottleneck([3, 4, 23, 3], cbam: true)),
            .init("resnet152_cbam", "seed CBAM-ResNet-152 (ca + sa after bn3 of every Bottleneck)", bottleneck([3, 8, 36, 3], cbam: true)),
            // The tiny configurations of Tools/make_model_fixtures.py (same code paths, small widths).
            .init("resnet18_tiny", "test config: ResNet-18 widths [4,8,16,32], 10 classes",
                  ["widths": .intList([4, 8, 16, 32]), "num_classes": .int(10), "img_size": .int(32)]),
            .init("resnet18_cbam_tiny", "test config: CBAM-ResNet-18 widths [16,16,32,32], 10 classes",
                  ["widths": .intList([16, 16, 32, 32]), "num_classes": .int(10), "cbam": .bool(true), "img_size": .int(32)]),
            .init("resnet50_tiny", "test config: ResNet-50 [3,4,6,3], planes [8,12,16,20], 10 classes",
                  bottleneck([3, 4, 6, 3]).merging(["widths": .intList([8, 12, 16, 20]), "num_classes": .int(10), "img_size": .int(32)]) { $1 }),
            .init("resnet50_cbam_tiny", "test config: CBAM-ResNet-50 [3,4,6,3], planes [8,12,16,20], 10 classes",
                  bottleneck([3, 4, 6, 3], cbam: true).merging(["widths": .intList([8, 12, 16, 20]), "num_classes": .int(10),
                                                                 "img_size": .int(32)]) { $1 }),
        ],
        build: { name, o, rng in
            guard let block = ResNetBlockKind(rawValue: try o.string("block")) else {
                throw ModelError.invalidConfiguration("\(name): unknown block type")  // the choice option admits only known kinds
            }
            return try ResNet(ResNetConfig(name: name, block: block, layers: o.intList("layers"), widths: o.intList("widths"), numClasses: o.int("num_classes"),
                                    inChannels: o.int("in_chans"), cbam: o.bool("cbam"), cbamRatio: o.int("cbam_ratio"),
                                    spatialKernel: o.int("spatial_kernel"), imgSize: o.int("img_size")), rng: &rng)
        })
}

/// Option values of a Bottleneck configuration.
private func bottleneck(_ layers: [Int], cbam: Bool = false) -> [String: OptionValue] {
    ["block": .string("bottleneck"), "layers": .intList(layers), "cbam": .bool(cbam)]
}
