// Registration of vit-pytorch's ViT in its two layouts (`lucidrains_vit`: seed 004 / today's release;
// `lucidrains_vit_prenorm`: seed 000's PreNorm release). Defaults: seed 000's configuration.

extension LucidrainsViT {
    /// The options both layouts take (issue 9's names), with seed 000's defaults.
    static let options: [ModelOption] = [
        ModelOption("image_size", .int(1...65536), default: .int(256), help: "input side (square)"),
        ModelOption("patch_size", .int(1...65536), default: .int(32), help: "patch side; divides image_size"),
        ModelOption("dim", .int(1...65536), default: .int(1024), help: "token width"),
        ModelOption("depth", .int(0...1024), default: .int(6), help: "transformer layers"),
        ModelOption("heads", .int(1...1024), default: .int(16), help: "attention heads"),
        ModelOption("mlp_dim", .int(1...1_048_576), default: .int(2048), help: "feed-forward hidden width"),
        ModelOption("dim_head", .int(1...65536), default: .int(64), help: "width of one attention head"),
        ModelOption("pool", .choice(["cls", "mean"]), default: .string("cls"), help: "classify the cls token or the mean of all tokens"),
        .numClasses(),
        ModelOption("channels", .int(1...4096), default: .int(3), help: "input channels"),
    ]

    static func family(_ layout: LucidrainsViTConfig.Layout) -> ModelFamily {
        let (name, summary, tiny): (String, String, String)
        switch layout {
        case .current:
            (name, summary, tiny) = ("lucidrains_vit",
                "vit-pytorch ViT, seed 004 / today's layout: normed patch embedding, blocks with their own LayerNorm, final norm",
                "lucidrains_vit_tiny")
        case .prenorm:
            (name, summary, tiny) = ("lucidrains_vit_prenorm",
                "vit-pytorch ViT, seed 000's PreNorm layout: Linear patch embedding, PreNorm blocks, LayerNorm + Linear head",
                "lucidrains_vit_prenorm_tiny")
        }
        return ModelFamily(
            name: name, summary: summary, options: options,
            configurations: [
                .init(name, summary + "; image 256, patch 32, dim 1024, depth 6, 16 heads, mlp 2048, 1000 classes"),
                // The tiny configuration of Tools/make_lucidrains_fixtures.py (mean pooling in the PreNorm one, so
                // both poolings are tested).
                .init(tiny, "test config: image 32, patch 8, dim 32, depth 2, 4 heads of 8, mlp 48, 10 classes",
                      ["image_size": .int(32), "patch_size": .int(8), "dim": .int(32), "depth": .int(2), "heads": .int(4),
                       "mlp_dim": .int(48), "dim_head": .int(8), "num_classes": .int(10),
                       "pool": .string(layout == .current ? "cls" : "mean")]),
            ],
            build: { name, o, rng in
                try LucidrainsViT(LucidrainsViTConfig(
                    name: name, layout: layout, imageSize: o.int("image_size"), patchSize: o.int("patch_size"),
                    numClasses: o.int("num_classes"), dim: o.int("dim"), depth: o.int("depth"), heads: o.int("heads"),
                    mlpDim: o.int("mlp_dim"), dimHead: o.int("dim_head"),
                    pool: o.string("pool") == "mean" ? .mean : .cls, channels: o.int("channels")), rng: &rng)
            })
    }

    public static let currentFamily = family(.current)
    public static let prenormFamily = family(.prenorm)
}
