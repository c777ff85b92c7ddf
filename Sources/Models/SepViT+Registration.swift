// Registration of seed 003's SepViT in vit-pytorch's SepViT-Lite configuration.

extension SepViT {
    public static let family = ModelFamily(
        name: "sepvit",
        summary: "SepViT (seed 003, vit-pytorch sep_vit.py): overlapping patch embed, PEG, DSSA window attention with window tokens, conv FF",
        options: [
            .numClasses(),
            ModelOption("image_size", .int(1...65536), default: .int(224), help: "input side (square); every stage's map must be a multiple of window_size"),
            ModelOption("dim", .int(1...65536), default: .int(32), help: "first stage width (stage i: dim·2^i)"),
            ModelOption("depth", .intList(0...1024), default: .intList([1, 2, 6, 2]), help: "blocks per stage (the stage count)"),
            ModelOption("heads", .intList(1...1024), default: .intList([1, 2, 4, 8]), help: "heads per stage"),
            ModelOption("dim_head", .int(1...4096), default: .int(32), help: "head width (vit-pytorch never passes its dim_head to the stages: its models always use 32)"),
            ModelOption("window_size", .int(1...4096), default: .int(7),
                        help: "DSSA window side (vit-pytorch never passes its window_size to DSSA: its models always use 7)"),
            ModelOption("ff_mult", .int(1...64), default: .int(4), help: "feed-forward expansion"),
            ModelOption("channels", .int(1...4096), default: .int(3), help: "input channels"),
        ],
        configurations: [
            .init("sepvit_lite", "SepViT-Lite: dim 32, dim_head 32, heads (1,2,4,8), depth (1,2,6,2), window 7, 224×224, 1000 classes"),
        ],
        build: { name, o, rng in
            try SepViT(name: name, imageSize: o.int("image_size"), numClasses: o.int("num_classes"), dim: o.int("dim"),
                       depth: o.intList("depth"), heads: o.intList("heads"), window: o.int("window_size"), dimHead: o.int("dim_head"),
                       ffMult: o.int("ff_mult"), channels: o.int("channels"), rng: &rng)
        })
}
