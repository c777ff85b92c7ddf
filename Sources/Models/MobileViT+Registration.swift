// Registration of seed 000's MobileViT family (vit-pytorch configurations).

extension MobileViT {
    public static let family = ModelFamily(
        name: "mobilevit",
        summary: "seed 000 MobileViT (vit-pytorch, PreNorm layout): MV2Blocks + 3 MobileViT blocks; today's vit-pytorch keys load via mobilevit.vit-pytorch",
        options: [
            .numClasses(),
            ModelOption("img_size", .int(64...65536), default: .int(256), help: "input side (square, a multiple of 64)"),
            ModelOption("dims", .intList(1...65536), default: .intList([96, 120, 144]), help: "transformer widths of the 3 MobileViT blocks"),
            ModelOption("channels", .intList(1...65536), default: .intList([16, 32, 48, 48, 64, 64, 80, 80, 96, 96, 384]),
                        help: "the 11 channel counts"),
            ModelOption("expansion", .int(1...64), default: .int(4), help: "MV2Block expansion"),
            ModelOption("depths", .intList(0...1024), default: .intList([2, 4, 3]), help: "transformer layers of the 3 MobileViT blocks"),
        ],
        configurations: [
            .init("mobilevit_xxs", "vit-pytorch MobileViT-XXS, 256×256",
                  ["dims": .intList([64, 80, 96]), "channels": .intList([16, 16, 24, 24, 48, 48, 64, 64, 80, 80, 320]), "expansion": .int(2)]),
            .init("mobilevit_xs", "vit-pytorch MobileViT-XS, 256×256"),
            .init("mobilevit_s", "vit-pytorch MobileViT-S, 256×256",
                  ["dims": .intList([144, 192, 240]), "channels": .intList([16, 32, 64, 64, 96, 96, 128, 128, 160, 160, 640])]),
            // The tiny configuration of Tools/make_model_fixtures.py.
            .init("mobilevit_tiny", "test config: 64×64, dims [16,16,24], depths [1,2,1], expansion 2, 10 classes",
                  ["img_size": .int(64), "dims": .intList([16, 16, 24]), "channels": .intList([8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 32]),
                   "expansion": .int(2), "depths": .intList([1, 2, 1]), "num_classes": .int(10)]),
        ],
        build: { name, o, rng in
            try MobileViT(MobileViTConfig(name: name, imageSize: o.int("img_size"), dims: o.intList("dims"), channels: o.intList("channels"),
                                          numClasses: o.int("num_classes"), expansion: o.int("expansion"), depths: o.intList("depths")),
                          rng: &rng)
        })
}
