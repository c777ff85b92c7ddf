// Registration of seed 000's annotated Transformer (`make_model`).

extension AnnotatedTransformer {
    public static let family = ModelFamily(
        name: "annotated_transformer",
        summary: "annotated Transformer (seed 000 make_model): encoder–decoder, inputs src/tgt ids + src_mask/tgt_mask, output = decoder output",
        options: [
            ModelOption("src_vocab", .int(1...10_000_000), default: .int(11), help: "source vocabulary (src_embed.0.lut rows)"),
            ModelOption("tgt_vocab", .int(1...10_000_000), default: .int(11), help: "target vocabulary (tgt_embed.0.lut rows, generator outputs)"),
            ModelOption("layers", .int(0...1024), default: .int(6), help: "encoder and decoder layers (make_model's N)"),
            ModelOption("d_model", .int(2...65536), default: .int(512), help: "model width; divisible by heads"),
            ModelOption("d_ff", .int(1...262_144), default: .int(2048), help: "feed-forward width"),
            ModelOption("heads", .int(1...1024), default: .int(8), help: "attention heads (make_model's h)"),
        ],
        configurations: [
            .init("annotated_transformer", "annotated Transformer, N 6, d_model 512, d_ff 2048, 8 heads (vocabularies: --config src_vocab=… tgt_vocab=…)"),
        ],
        build: { name, o, rng in
            try AnnotatedTransformer(name: name, srcVocab: o.int("src_vocab"), tgtVocab: o.int("tgt_vocab"), layers: o.int("layers"),
                                     dModel: o.int("d_model"), dFF: o.int("d_ff"), heads: o.int("heads"), rng: &rng)
        })
}
