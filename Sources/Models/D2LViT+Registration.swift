// Registration of seed 002's d2l notebook ViT.

extension D2LViT {
    public static let family = ModelFamily(
        name: "d2l_vit",
        summary: "d2l notebook ViT (seed 002): Patch_conv, cls appended after the patches, bias-free d2l attention, mlphead on token 0",
        options: [
            ModelOption("img_size", .int(1...65536), default: .int(224), help: "input side (square); multiple of patch_size"),
            ModelOption("patch_size", .int(1...1024), default: .int(16), help: "patch side; token width is 3·patch_size²"),
            ModelOption("blocks", .int(0...1024), default: .int(2), help: "transformer blocks"),
            ModelOption("heads", .int(1...1024), default: .int(4), help: "attention heads; divide 3·patch_size²"),
            ModelOption("classes", .int(1...1_000_000), default: .int(10), help: "outputs of mlphead"),
        ],
        configurations: [.init("d2l_vit", "d2l ViT: 224×224, patch 16 (width 768), 2 blocks, 4 heads, 10 classes")],
        build: { name, o, rng in
            try D2LViT(name: name, imgSize: o.int("img_size"), patchSize: o.int("patch_size"), blocks: o.int("blocks"),
                       heads: o.int("heads"), classes: o.int("classes"), rng: &rng)
        })
}
