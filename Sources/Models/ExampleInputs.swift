// Example input values for `weights bench` (and docs) when zeros are not a realistic input: token ids drawn within
// the vocabulary, causal target masks.
import TensorCore

/// A model that makes its own example inputs. `bench` uses them instead of its generic ones (seeded uniform floats,
/// token ids 0, masks all true).
public protocol ExampleInputProvider: Model {
    /// Inputs at each spec's example shape, with free dimensions named in `sizes` (`S`, `T`) at those sizes and the
    /// batch at `batch`; values drawn from `seed`.
    func exampleInputs(batch: Int, sizes: [String: Int], seed: UInt64) -> [InputTensor]
}

extension TensorSpec {
    /// A concrete shape: `N` at `batch`, free dimensions named in `sizes` at those sizes, the others at their example.
    public func exampleShape(batch: Int, sizes: [String: Int]) -> [Int] {
        shape.map { d in
            switch d {
            case .fixed(let n): return n
            case .free("N", _): return batch
            case .free(let name, let e): return sizes[name] ?? e
            }
        }
    }
}

extension AnnotatedTransformer: ExampleInputProvider {
    /// Random ids in each vocabulary, `src_mask` all true (no padding), `tgt_mask` = the seed's `subsequent_mask`.
    public func exampleInputs(batch: Int, sizes: [String: Int], seed: UInt64) -> [InputTensor] {
        var rng = SeededGenerator(seed: seed)
        let specs = inputSpecs
        let ss = specs[0].exampleShape(batch: batch, sizes: sizes), ts = specs[1].exampleShape(batch: batch, sizes: sizes)
        let (s, t) = (ss[1], ts[1])
        let sv = UInt64(srcEmbed.embeddings.lut.count), tv = UInt64(tgtEmbed.embeddings.lut.count)
        let src = (0..<(batch * s)).map { _ in Int64(rng.next() % sv) }
        let tgt = (0..<(batch * t)).map { _ in Int64(rng.next() % tv) }
        let causal = (0..<(batch * t * t)).map { i in (i % t) <= (i / t) % t }
        return [.int64(shape: [batch, s], values: src), .int64(shape: [batch, t], values: tgt),
                .bool(shape: [batch, 1, s], values: [Bool](repeating: true, count: batch * s)),
                .bool(shape: [batch, t, t], values: causal)]
    }
}
