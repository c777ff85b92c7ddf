// Registration of seed 000's SENet-18.

extension SENet {
    public static let family = ModelFamily(
        name: "senet",
        summary: "seed 000's SENet-18: ResidualBlocks conv2_1…conv5_2 with an SE layer each, under the seed's keys",
        options: [
            .numClasses(),
            ModelOption("in_chans", .int(1...4096), default: .int(3), help: "input channels"),
            ModelOption("widths", .intList(1...65536), default: .intList([64, 128, 256, 512]),
                        help: "channels of conv2_x…conv5_x (a block that changes width has stride 2 and the conv1x1 shortcut)"),
            ModelOption("reduction", .int(1...65536), default: .int(16), help: "SE layer reduction (fc1: C → C/reduction)"),
            ModelOption("img_size", .int(1...65536), default: .int(224), help: "nominal input side for bench and listings (any H, W runs)"),
        ],
        configurations: [
            .init("senet18", "seed SENet-18 (its Model(); the seed's example uses num_classes=10: --config num_classes=10)"),
            // The tiny configuration of Tools/make_model_fixtures.py (same code paths, small widths).
            .init("senet18_tiny", "test config: SENet-18 widths [16,20,24,32], 10 classes",
                  ["widths": .intList([16, 20, 24, 32]), "num_classes": .int(10), "img_size": .int(32)]),
        ],
        build: { name, o, rng in
            try SENet(SENetConfig(name: name, widths: o.intList("widths"), numClasses: o.int("num_classes"), inChannels: o.int("in_chans"),
                                  reduction: o.int("reduction"), imgSize: o.int("img_size")), rng: &rng)
        })
}
