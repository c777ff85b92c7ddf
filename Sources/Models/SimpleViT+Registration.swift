// Registration of seed 000's SimpleViT (`simple_vit`), with the seed's configuration as default.

extension SimpleViT {
    public static let family = ModelFamily(
        name: "simple_vit",
        summary: "seed 000's SimpleViT: Linear patch embedding, computed 2-D sin-cos positions, mean pooling, LayerNorm + Linear head",
        options: [
            ModelOption("image_size", .int(1...65536), default: .int(256), help: "input side (square)"),
            ModelOption("patch_size", .int(1...65536), default: .int(32), help: "patch side; divides image_size"),
            ModelOption("dim", .int(8...65536), default: .int(1024), help: "token width; a multiple of 4 (sin-cos quarters)"),
            ModelOption("depth", .int(0...1024), default: .int(6), help: "transformer layers"),
            ModelOption("heads", .int(1...1024), default: .int(16), help: "attention heads"),
            ModelOption("mlp_dim", .int(1...1_048_576), default: .int(2048), help: "feed-forward hidden width"),
            ModelOption("dim_head", .int(1...65536), default: .int(64), help: "width of one attention head"),
            .numClasses(),
            ModelOption("channels", .int(1...4096), default: .int(3), help: "input channels"),
        ],
        configurations: [
            .init("simple_vit", "SimpleViT image 256, patch 32, dim 1024, depth 6, 16 heads, mlp 2048, 1000 classes"),
            // The tiny configuration of Tools/make_lucidrains_fixtures.py.
            .init("simple_vit_tiny", "test config: image 32, patch 8, dim 32, depth 2, 4 heads of 8, mlp 48, 10 classes",
                  ["image_size": .int(32), "patch_size": .int(8), "dim": .int(32), "depth": .int(2), "heads": .int(4),
                   "mlp_dim": .int(48), "dim_head": .int(8), "num_classes": .int(10)]),
        ],
        build: { name, o, rng in
            try SimpleViT(SimpleViTConfig(
                name: name, imageSize: o.int("image_size"), patchSize: o.int("patch_size"), numClasses: o.int("num_classes"),
                dim: o.int("dim"), depth: o.int("depth"), heads: o.int("heads"), mlpDim: o.int("mlp_dim"),
                dimHead: o.int("dim_head"), channels: o.int("channels")), rng: &rng)
        })
}
