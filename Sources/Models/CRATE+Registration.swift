// Registration of CRATE (`crate`), defaults as issue 9 gives them: image 224, patch 32, dim 1024, depth 6, 16 heads.

extension CRATE {
    public static let family = ModelFamily(
        name: "crate",
        summary: "CRATE (Ma-Lab-Berkeley model/crate.py): MSSA attention with q = k = v, ISTA sparse-coding feed-forward",
        options: [
            ModelOption("image_size", .int(1...65536), default: .int(224), help: "input side (square)"),
            ModelOption("patch_size", .int(1...65536), default: .int(32), help: "patch side; divides image_size"),
            ModelOption("dim", .int(1...65536), default: .int(1024), help: "token width"),
            ModelOption("depth", .int(0...1024), default: .int(6), help: "transformer layers"),
            ModelOption("heads", .int(1...1024), default: .int(16), help: "attention heads"),
            ModelOption("dim_head", .int(1...65536), default: .int(64), help: "width of one attention head"),
            ModelOption("pool", .choice(["cls", "mean"]), default: .string("cls"), help: "classify the cls token or the mean of all tokens"),
            .numClasses(),
            ModelOption("channels", .int(1...4096), default: .int(3), help: "input channels"),
            ModelOption("ista", .float(0...100), default: .float(0.1), help: "ISTA step size"),
        ],
        configurations: [
            .init("crate", "CRATE image 224, patch 32, dim 1024, depth 6, 16 heads of 64, 1000 classes"),
            // The tiny configuration of Tools/make_lucidrains_fixtures.py.
            .init("crate_tiny", "test config: image 32, patch 8, dim 32, depth 2, 4 heads of 8, 10 classes",
                  ["image_size": .int(32), "patch_size": .int(8), "dim": .int(32), "depth": .int(2), "heads": .int(4),
                   "dim_head": .int(8), "num_classes": .int(10)]),
        ],
        build: { name, o, rng in
            try CRATE(CRATEConfig(
                name: name, imageSize: o.int("image_size"), patchSize: o.int("patch_size"), numClasses: o.int("num_classes"),
                dim: o.int("dim"), depth: o.int("depth"), heads: o.int("heads"), dimHead: o.int("dim_head"),
                pool: o.string("pool") == "mean" ? .mean : .cls, channels: o.int("channels"), ista: Float(o.float("ista"))), rng: &rng)
        })
}
