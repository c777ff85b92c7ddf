// Registration of the torchvision BasicBlock ResNets and the seed's CBAM variants.

extension ResNet {
    public static let family = ModelFamily(
        name: "resnet",
        summary: "torchvision ResNet with BasicBlocks; optional CBAM (seed 000) in every block",
        options: [
            .numClasses(),
            ModelOption("in_chans", .int(1...4096), default: .int(3), help: "input channels"),
            ModelOption("layers", .intList(1...1024), default: .intList([2, 2, 2, 2]), help: "blocks in layer1…layer4"),
            ModelOption("widths", .intList(1...65536), default: .intList([64, 128, 256, 512]), help: "planes of layer1…layer4"),
            ModelOption("cbam", .bool, default: .bool(false), help: "channel + spatial attention after bn2 in every block"),
            ModelOption("cbam_ratio", .int(1...65536), default: .int(16), help: "CBAM channel reduction ratio"),
            ModelOption("spatial_kernel", .int(1...63), default: .int(7), help: "CBAM spatial attention kernel (odd)"),
            ModelOption("img_size", .int(1...65536), default: .int(224), help: "nominal input side for bench and listings (any H, W runs)"),
        ],
        configurations: [
            .init("resnet18", "torchvision ResNet-18, BasicBlock [2,2,2,2]"),
            .init("resnet34", "torchvision ResNet-34, BasicBlock [3,4,6,3]", ["layers": .intList([3, 4, 6, 3])]),
            .init("resnet18_cbam", "seed CBAM-ResNet-18 (ca + sa in every block)", ["cbam": .bool(true)]),
            .init("resnet34_cbam", "seed CBAM-ResNet-34 (ca + sa in every block)", ["layers": .intList([3, 4, 6, 3]), "cbam": .bool(true)]),
            // The tiny configurations of Tools/make_model_fixtures.py (same code paths, small widths).
            .init("resnet18_tiny", "test config: ResNet-18 widths [4,8,16,32], 10 classes",
                  ["widths": .intList([4, 8, 16, 32]), "num_classes": .int(10), "img_size": .int(32)]),
            .init("resnet18_cbam_tiny", "test config: CBAM-ResNet-18 widths [16,16,32,32], 10 classes",
                  ["widths": .intList([16, 16, 32, 32]), "num_classes": .int(10), "cbam": .bool(true), "img_size": .int(32)]),
        ],
        build: { name, o, rng in
            try ResNet(ResNetConfig(name: name, layers: o.intList("layers"), widths: o.intList("widths"), numClasses: o.int("num_classes"),
                                    inChannels: o.int("in_chans"), cbam: o.bool("cbam"), cbamRatio: o.int("cbam_ratio"),
                                    spatialKernel: o.int("spatial_kernel"), imgSize: o.int("img_size")), rng: &rng)
        })
}
