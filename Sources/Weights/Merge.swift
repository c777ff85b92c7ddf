import Foundation

/// One input of a merge: a checkpoint and, optionally, the subtree of it to take.
public struct MergeInput: Sendable, Equatable {
    public var path: String
    public var key: String?

    public init(path: String, key: String? = nil) { self.path = path; self.key = key }

    /// `FILE` or `FILE:KEY` (`ckpt.pth:state_dict`). A path that exists as written is always a path, colons and
    /// all; otherwise the text after the last `:` is the key when the text before it exists.
    public static func parse(_ spec: String) -> MergeInput {
        if FileManager.default.fileExists(atPath: spec) { return MergeInput(path: spec) }
        if let colon = spec.lastIndex(of: ":") {
            let path = String(spec[..<colon]), key = String(spec[spec.index(after: colon)...])
            if !path.isEmpty, !key.isEmpty, FileManager.default.fileExists(atPath: path) { return MergeInput(path: path, key: key) }
        }
        return MergeInput(path: spec)
    }
}

/// Errors of `weights merge`.
public enum MergeError: WeightsError, Equatable {
    /// `--no-override`: a tensor name is in two inputs.
    case overlap(key: String, first: String, second: String)
    /// Fewer than two inputs.
    case needsTwoInputs
    /// `merge_sources` / `merge_map` metadata that does not describe the file's tensors.
    case badProvenance(String)
    /// An output format merge does not write (a Distributed Checkpoint: its metadata would not carry the provenance).
    case unsupportedOutput(String)

    public var description: String {
        switch self {
        case let .overlap(key, first, second):
            return "tensor '\(TerminalText.escape(key, limit: 250))' is in both \(TerminalText.escape(first, limit: 250)) and \(TerminalText.escape(second, limit: 250)) (--no-override refuses overlaps)"
        case .needsTwoInputs: return "merge needs at least two input files"
        case .badProvenance(let why): return "merge provenance metadata: \(why)"
        case .unsupportedOutput(let format): return "merge writes safetensors (one file or shards) or HDF5, not \(format)"
        }
    }
}

/// How to merge.
public struct MergeOptions: Sendable {
    /// Later inputs replace earlier ones' tensors of the same name (Python's `dict.update`); false makes any
    /// overlap an error naming the key and both files.
    public var override: Bool
    /// Output format, cast, overwrite, fsync, strict globals, skipping of unsupported tensors and read checks, as
    /// for `convert` (its `key`, `mapping` and `model` are not used: keys are per input).
    public var output: ConversionOptions

    public init(override: Bool = true, output: ConversionOptions = ConversionOptions(mapping: .none)) {
        self.override = override; self.output = output
    }
}

/// A merge planned, ready to be written.
public struct PreparedMerge: Sendable {
    public let inputs: [StateDict]
    /// The merged tensors with their output metadata, written by `Converter.write`.
    public let conversion: PreparedConversion
    /// For each merged tensor (in output order), the index of the input it comes from.
    public let sources: [Int]
    /// Tensors a later input replaced: name, the input it came from before and the one it comes from now.
    public let overridden: [(name: String, from: Int, to: Int)]
}

/// `weights merge`: the CBAM seed's `sd.update(pretrained)` as a file operation. Inputs are taken in order; a later
/// input's tensor replaces an earlier one of the same name in place (it keeps the first position, as a Python dict
/// does), new names are appended. The output is written as `convert` writes (streaming, zero-copy where possible,
/// atomic) with metadata recording where each tensor came from (`merge_sources`, `merge_map`; see `provenance`).
public enum Merger {
    public static func prepare(_ inputs: [MergeInput], options: MergeOptions = MergeOptions()) throws -> PreparedMerge {
        guard inputs.count >= 2 else { throw MergeError.needsTwoInputs }
        if options.output.format == .dcp { throw MergeError.unsupportedOutput(options.output.format.rawValue) }
        let read = options.output.read
        let dicts = try inputs.map { try Checkpoint.open($0.path, key: $0.key, options: read) }
        var notices: [PreparedConversion.Notice] = []
        for sd in dicts {
            if let text = try sd.checkNeutralisedGlobals(strict: options.output.strictGlobals) {
                notices.append(.init(kind: sd.neutralisedGlobalsAreTorchOnly ? .note : .warning, text: text))
            }
        }

        // dict.update over (tensor or unsupported tensor, source index).
        enum Item { case tensor(TensorEntry), unsupported(UnsupportedTensor) }
        var order: [String] = []
        var winners: [String: (item: Item, source: Int)] = [:]
        var overridden: [(name: String, from: Int, to: Int)] = []
        for (i, sd) in dicts.enumerated() {
            let items = sd.tensors.map { ($0.name, Item.tensor($0)) } + sd.unsupported.map { ($0.name, Item.unsupported($0)) }
            for (name, item) in items {
                if let previous = winners[name] {
                    // An overlap is across files; one file holding a name twice is refused, as the writers refuse it.
                    guard previous.source != i else { throw CheckpointError("duplicate tensor name", file: sd.file, key: name) }
                    guard options.override else { throw MergeError.overlap(key: name, first: dicts[previous.source].file, second: sd.file) }
                    overridden.append((name, previous.source, i))
                    if case .tensor(let old) = previous.item, case .tensor(let new) = item, old.dtype != new.dtype || old.shape != new.shape {
                        notices.append(.init(kind: .warning, text: "'\(name)' from \(sd.file) (\(new.dtype.rawValue) \(new.shape)) replaces "
                                             + "\(old.dtype.rawValue) \(old.shape) from \(dicts[previous.source].file)"))
                    }
                } else {
                    order.append(name)
                }
                winners[name] = (item, i)
            }
        }

        // Tensors a reader could not represent: refused naming their file, unless they are to be skipped.
        var merged = StateDict(format: dicts[0].format, file: dicts.map(\.file).joined(separator: " + "))
        var sources: [Int] = []
        for name in order {
            guard let (item, source) = winners[name] else { continue }
            let file = dicts[source].file
            switch item {
            case .tensor(let t) where t.chunks != nil:
                // A Distributed Checkpoint's chunked tensor: kept as it is, so the writer places chunk by chunk.
                merged.tensors.append(t)
                sources.append(source)
            case .tensor(let t):
                // Errors while streaming name the input the tensor comes from; the zero-copy span is kept.
                merged.tensors.append(TensorEntry(name: t.name, dtype: t.dtype, shape: t.shape, location: t.location, span: t.span,
                                                  loader: { try CheckpointError.withContext(file: file) { try t.load() } }))
                sources.append(source)
            case .unsupported(let u):
                if !options.output.skipUnsupported {
                    throw CheckpointError("\(u.what) cannot be converted (--skip-unsupported leaves such tensors out)", file: file, key: u.name)
                }
                merged.unsupported.append(u)
            }
        }

        // Which tensors the output will hold: the writer leaves out (under skipUnsupported) those it cannot store.
        let cast = options.output.dtype, safetensors = options.output.format == .safetensors
        var written: [(name: String, source: Int)] = []
        for (t, source) in zip(merged.tensors, sources) {
            let dtype = t.dtype.cast(to: cast)
            if safetensors ? SafetensorsWriter.holds(dtype) : HDF5Writer.holds(dtype) { written.append((t.name, source)) }
        }
        var meta = carriedMetadata(dicts)
        for (k, v) in provenance(inputs: inputs, dicts: dicts, tensors: written) { meta[k] = v }
        let (carried, dropped) = OutputMetadata.fit(meta, first: provenanceKeys)
        if !dropped.isEmpty { notices.append(.init(kind: .note, text: "merged output: \(OutputMetadata.summary(dropped))")) }
        let conversion = PreparedConversion(source: merged, stateDict: merged, table: nil, metadata: carried, droppedMetadata: dropped,
                                            notices: notices)
        return PreparedMerge(inputs: dicts, conversion: conversion, sources: sources, overridden: overridden)
    }

    /// Merges `inputs` into `output` (never one of the inputs; atomically).
    @discardableResult
    public static func merge(_ inputs: [MergeInput], to output: String, options: MergeOptions = MergeOptions(),
                             progress: ((Int) -> Void)? = nil) throws -> (PreparedMerge, ConversionResult) {
        try checkDestination(inputs: inputs, output: output, overwrite: options.output.overwrite, folder: options.output.maxShardSize != nil)
        let prepared = try prepare(inputs, options: options)
        return (prepared, try write(prepared, to: output, options: options, progress: progress))
    }

    /// Writes a prepared merge atomically (one file, or with `maxShardSize` a folder of safetensors shards and their
    /// index), refusing an output that is a shard of a sharded input, or for a folder the folder an input or shard
    /// lies in (known only once the inputs are read).
    @discardableResult
    public static func write(_ prepared: PreparedMerge, to output: String, options: MergeOptions = MergeOptions(),
                             progress: ((Int) -> Void)? = nil) throws -> ConversionResult {
        let folder = options.output.maxShardSize != nil
        for sd in prepared.inputs {
            for file in [sd.file] + sd.shards where Converter.sameFile(file, output) || (folder && Converter.sameFile(parent(file), output)) {
                throw ConversionError.outputIsInput(input: file)
            }
        }
        return try Converter.write(prepared.conversion, to: output, options: options.output, progress: progress)
    }

    /// Refuses an output that is one of the inputs (for a `folder` output, the folder one lies in), or that
    /// `convert` would refuse.
    public static func checkDestination(inputs: [MergeInput], output: String, overwrite: Bool, folder: Bool = false) throws {
        for input in inputs where Converter.sameFile(input.path, output) || (folder && Converter.sameFile(parent(input.path), output)) {
            throw ConversionError.outputIsInput(input: input.path)
        }
        if folder { try ShardedOutput.checkDestination(output, overwrite: overwrite) } else { try AtomicOutput.checkDestination(output, overwrite: overwrite) }
    }

    static func parent(_ path: String) -> String {
        let p = PathText.parent(path)
        return p.isEmpty ? "." : p
    }

    // MARK: Provenance

    /// The keys `merge` sets, carried before the inputs' own metadata when limits force a choice.
    public static let provenanceKeys = ["converted_by", "merge_sources", "merge_map"]

    /// The inputs' own metadata, later inputs overriding earlier ones (as for tensors), without the provenance of
    /// an earlier conversion or merge (which would describe an input, not the output).
    static func carriedMetadata(_ dicts: [StateDict]) -> [String: String] {
        let skip = Set(Converter.provenanceKeys + provenanceKeys)
        var out: [String: String] = [:]
        for sd in dicts { for e in sd.metadata where !skip.contains(e.name) { out[e.name] = e.value.description } }
        return out
    }

    /// Where each tensor came from, compactly:
    /// - `merge_sources`: a JSON list with one object per input, in order: `{"file": NAME, "format": FORMAT}` plus
    ///   `"key"` when a subtree was taken (the file's last path component, as `convert`'s `source_file`);
    /// - `merge_map`: a JSON list of runs `[source, count]` over the output's tensor names sorted by Unicode code
    ///   point (Python's `sorted(names)`), each run saying that the next `count` names come from input `source`.
    /// Runs keep it small (a 1000-tensor merge of two files is a few hundred bytes, at most ~8 KB even when the
    /// sources alternate) and the sorted order does not depend on how a format orders its tensors.
    public static func provenance(inputs: [MergeInput], dicts: [StateDict], tensors: [(name: String, source: Int)]) -> [String: String] {
        let list = zip(inputs, dicts).map { input, sd in
            "{\"file\":\(HeaderJSON.quote(URL(fileURLWithPath: input.path).lastPathComponent)),\"format\":\(HeaderJSON.quote(sd.format.rawValue))"
                + (input.key.map { ",\"key\":\(HeaderJSON.quote($0))" } ?? "") + "}"
        }
        var runs: [(source: Int, count: Int)] = []
        for t in tensors.sorted(by: { codePointOrder($0.name, $1.name) }) {
            if let last = runs.last, last.source == t.source { runs[runs.count - 1].count += 1 } else { runs.append((t.source, 1)) }
        }
        return [
            "converted_by": "weights",
            "merge_sources": "[" + list.joined(separator: ",") + "]",
            "merge_map": "[" + runs.map { "[\($0.source),\($0.count)]" }.joined(separator: ",") + "]",
        ]
    }

    /// Reads `merge_sources` / `merge_map` back: for each tensor name, the source file name it came from.
    /// Throws when the metadata is absent, malformed, or does not cover exactly `names`.
    public static func sources(metadata: [String: String], names: [String]) throws -> [String: String] {
        guard let s = metadata["merge_sources"], let m = metadata["merge_map"] else {
            throw MergeError.badProvenance("no merge_sources / merge_map entries")
        }
        let list = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [[String: Any]]
        let files = list?.compactMap { $0["file"] as? String } ?? []
        guard let list, files.count == list.count else {
            throw MergeError.badProvenance("merge_sources is not a list of {\"file\": …} objects")
        }
        guard let runs = try? JSONSerialization.jsonObject(with: Data(m.utf8)) as? [[Int]] else {
            throw MergeError.badProvenance("merge_map is not a list of [source, count] pairs")
        }
        let sorted = names.sorted(by: codePointOrder)
        var out: [String: String] = [:]
        var next = 0
        for run in runs {
            guard run.count == 2, files.indices.contains(run[0]), run[1] > 0, run[1] <= sorted.count - next else {
                throw MergeError.badProvenance("run \(run) does not fit \(files.count) sources and \(sorted.count) tensors")
            }
            for name in sorted[next..<(next + run[1])] { out[name] = files[run[0]] }
            next += run[1]
        }
        guard next == sorted.count else { throw MergeError.badProvenance("merge_map covers \(next) of \(sorted.count) tensors") }
        return out
    }

    /// Unicode code point order (= UTF-8 byte order; Python's string order). Swift's `<` on String compares
    /// canonically equivalent forms equal, which another reader would not.
    static func codePointOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
