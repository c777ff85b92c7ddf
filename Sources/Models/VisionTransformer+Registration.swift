// Registration of the seed's timm-style VisionTransformer configurations (vit_model.py).

extension VisionTransformer {
    public static let family = ModelFamily(
        name: "vit",
        summary: "timm VisionTransformer (seed vit_model.py): patch conv, cls token, pre-norm blocks, optional pre_logits",
        options: [
            .numClasses(allowZero: true),
            ModelOption("img_size", .int(1...65536), default: .int(224), help: "input side (square)"),
            ModelOption("patch_size", .int(1...65536), default: .int(16), help: "patch side; divides img_size"),
            ModelOption("in_chans", .int(1...4096), default: .int(3), help: "input channels"),
            ModelOption("embed_dim", .int(1...65536), default: .int(768), help: "token width; divisible by num_heads"),
            ModelOption("depth", .int(0...1024), default: .int(12), help: "transformer blocks"),
            ModelOption("num_heads", .int(1...1024), default: .int(12), help: "attention heads"),
            ModelOption("mlp_ratio", .float(0.001...64), default: .float(4), help: "MLP hidden width / embed_dim"),
            ModelOption("qkv_bias", .bool, default: .bool(true), help: "bias on the fused qkv projection"),
            ModelOption("representation_size", .int(0...65536), default: .int(0), help: "pre_logits width (0: no pre_logits)"),
            ModelOption("eps", .float(1e-12...1), default: .float(1e-6), help: "LayerNorm epsilon"),
        ],
        configurations: [
            .init("vit_base_patch16_224", "timm ViT 768d×12, patch 16, 1000 classes"),
            .init("vit_base_patch32_224", "timm ViT 768d×12, patch 32, 1000 classes", ["patch_size": .int(32)]),
            .init("vit_base_patch16_224_in21k", "timm ViT 768d×12, patch 16, 21843 classes, pre_logits 768",
                  ["num_classes": .int(21843), "representation_size": .int(768)]),
            .init("vit_base_patch32_224_in21k", "timm ViT 768d×12, patch 32, 21843 classes, pre_logits 768",
                  ["patch_size": .int(32), "num_classes": .int(21843), "representation_size": .int(768)]),
            .init("vit_large_patch16_224", "timm ViT 1024d×24, patch 16, 1000 classes",
                  ["embed_dim": .int(1024), "depth": .int(24), "num_heads": .int(16)]),
            .init("vit_large_patch16_224_in21k", "timm ViT 1024d×24, patch 16, 21843 classes, pre_logits 1024",
                  ["embed_dim": .int(1024), "depth": .int(24), "num_heads": .int(16), "num_classes": .int(21843), "representation_size": .int(1024)]),
            .init("vit_large_patch32_224_in21k", "timm ViT 1024d×24, patch 32, 21843 classes, pre_logits 1024",
                  ["patch_size": .int(32), "embed_dim": .int(1024), "depth": .int(24), "num_heads": .int(16), "num_classes": .int(21843),
                   "representation_size": .int(1024)]),
            .init("vit_huge_patch14_224_in21k", "timm ViT 1280d×32, patch 14, 21843 classes, pre_logits 1280",
                  ["patch_size": .int(14), "embed_dim": .int(1280), "depth": .int(32), "num_heads": .int(16), "num_classes": .int(21843),
                   "representation_size": .int(1280)]),
            // The tiny configuration of Tools/make_model_fixtures.py.
            .init("vit_tiny_patch8_32", "test config: ViT img 32, patch 8, dim 32, depth 2, 4 heads, pre_logits 16",
                  ["img_size": .int(32), "patch_size": .int(8), "num_classes": .int(10), "embed_dim": .int(32), "depth": .int(2),
                   "num_heads": .int(4), "representation_size": .int(16)]),
        ],
        build: { name, o, rng in
            let r = try o.int("representation_size")
            return try VisionTransformer(ViTConfig(
                name: name, imgSize: o.int("img_size"), patchSize: o.int("patch_size"), inChans: o.int("in_chans"),
                numClasses: o.int("num_classes"), embedDim: o.int("embed_dim"), depth: o.int("depth"), numHeads: o.int("num_heads"),
                mlpRatio: o.float("mlp_ratio"), qkvBias: o.bool("qkv_bias"), representationSize: r > 0 ? r : nil,
                eps: Float(o.float("eps"))), rng: &rng)
        })
}
