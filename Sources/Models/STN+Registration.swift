// Registration of seed 000's STN family.

extension STN {
    public static let family = ModelFamily(
        name: "stn",
        summary: "seed 000 spatial transformer STN(c, h, w): LocalNetwork (affine_grid + grid_sample) + conv classifier; outputs image, logits",
        options: [
            .numClasses(default: 10),
            ModelOption("c", .int(1...65536), default: .int(3), help: "input channels"),
            ModelOption("h", .int(1...65536), default: .int(32), help: "input height"),
            ModelOption("w", .int(1...65536), default: .int(32), help: "input width"),
            ModelOption("hidden", .int(1...1_000_000), default: .int(1024), help: "width of fc.0 (the seed's 1024)"),
        ],
        configurations: [
            .init("stn", "seed STN(3, 32, 32): 10 classes, hidden 1024"),
            // The tiny configuration of Tools/make_model_fixtures.py (non-square: the seed's H/W swap shows).
            .init("stn_tiny", "test config: STN(3, 16, 12), hidden 32", ["h": .int(16), "w": .int(12), "hidden": .int(32)]),
        ],
        build: { name, o, rng in
            try STN(STNConfig(name: name, channels: o.int("c"), height: o.int("h"), width: o.int("w"), hidden: o.int("hidden"),
                              numClasses: o.int("num_classes")), rng: &rng)
        })
}
