import Foundation

/// Errors of the convert pipeline.
public enum ConversionError: WeightsError {
    /// The output path is the input file (or a link to it).
    case outputIsInput(input: String)
    /// The mapped tensors do not cover the target model exactly (what `strict` loading needs); `report` says how.
    case doesNotFitModel(file: String, table: String, model: String, report: LoadReport)

    public var description: String {
        switch self {
        case let .outputIsInput(input): return "refusing to write over the input file \(input)"
        case let .doesNotFitModel(file, table, model, report):
            return "\(file): mapped through \(table), the tensors do not load onto \(model) under strict: \(report.problems.joined(separator: "; "))"
        }
    }
}

/// How to convert a checkpoint.
public struct ConversionOptions: Sendable {
    public enum Format: String, Sendable, CaseIterable { case safetensors, h5, dcp }

    public var format: Format
    /// Cast floating tensors to this dtype (nil keeps them bit-exact). Integer and bool tensors are always kept.
    public var dtype: DType?
    /// Only the subtree under this dotted path (`state_dict`).
    public var key: String?
    /// `auto` (detect; keep the names when no table recognises the file and no model is given), `none`, or a table.
    public var mapping: MappingChoice
    /// Target model: the output must then load onto it under `strict`. Its name (and `modelConfig`) go into
    /// the output's metadata.
    public var model: ModelDescription?
    /// The `KEY=VALUE` options the target model was configured with, for provenance.
    public var modelConfig: [String]
    /// Replace an existing output.
    public var overwrite: Bool
    /// fsync the output before moving it into place.
    public var durable: Bool
    /// Refuse a pickle naming globals outside the allowlist (by default they become inert placeholders and
    /// `PreparedConversion.notices` says so).
    public var strictGlobals: Bool
    /// Leave out the tensors the output format cannot hold (listed in `ConversionResult.skipped`) instead of
    /// refusing the conversion naming the first of them.
    public var skipUnsupported: Bool
    /// CRC check of zero-copy zip members and the cap on declared output bytes (`ReadOptions`).
    public var read: ReadOptions = ReadOptions()
    /// `.dcp` output: the number of ranks (`__<r>_0.distcp` files) the tensors' rows are split over.
    public var ranks = 1
    /// Write a folder of safetensors shards of at most this many bytes each, in Hugging Face's layout
    /// (`ShardedSafetensorsWriter`), instead of one file. safetensors only.
    public var maxShardSize: Int?

    public init(format: Format = .safetensors, dtype: DType? = nil, key: String? = nil, mapping: MappingChoice = .auto,
                model: ModelDescription? = nil, modelConfig: [String] = [], overwrite: Bool = false, durable: Bool = false,
                strictGlobals: Bool = false, skipUnsupported: Bool = false) {
        self.format = format; self.dtype = dtype; self.key = key; self.mapping = mapping; self.model = model
        self.modelConfig = modelConfig; self.overwrite = overwrite; self.durable = durable; self.strictGlobals = strictGlobals
        self.skipUnsupported = skipUnsupported
    }
}

/// A checkpoint read and mapped, ready to be written: the tensors under their output names, the table used and
/// the output's metadata.
public struct PreparedConversion: Sendable {
    public let source: StateDict
    public let stateDict: StateDict
    /// The mapping table applied, or nil when the names were kept.
    public let table: String?
    /// `__metadata__` of the output: provenance plus the checkpoint's non-tensor leaves, within `OutputMetadata`'s
    /// limits (provenance first).
    public let metadata: [String: String]
    /// Metadata entries left out by those limits.
    public let droppedMetadata: [OutputMetadata.Dropped]
    /// Things the user should be told (neutralised pickle globals, dropped metadata), each with its severity.
    public let notices: [Notice]

    public struct Notice: Sendable, Equatable {
        public enum Kind: String, Sendable { case note, warning }
        public let kind: Kind
        public let text: String
    }

    /// Bytes the output's tensor data takes (after any cast).
    public func outputBytes(cast: DType?) -> Int {
        stateDict.tensors.reduce(0) { acc, t in
            acc + (ShapeMath.byteCount(t.shape, t.dtype.cast(to: cast)) ?? 0)
        }
    }
}

/// What a conversion wrote.
public struct ConversionResult: Sendable {
    public let input: String
    public let output: String
    public let prepared: PreparedConversion
    public let bytesWritten: Int
    public let seconds: Double
    /// Tensors left out under `skipUnsupported`, each with the reason (the output format cannot hold its dtype).
    public var skipped: [(name: String, reason: String)] = []
    /// The files written into the output folder (shards, then the index) when `maxShardSize` was given.
    public var files: [String] = []
}

/// The convert pipeline: read a checkpoint, pick and apply the mapping table, check the result against a target
/// model, add provenance metadata, and write safetensors or HDF5 atomically (the input is never modified).
public enum Converter {
    /// Reads and maps `input` without writing anything.
    public static func prepare(_ input: String, options: ConversionOptions, catalog: MappingCatalog? = nil) throws -> PreparedConversion {
        let source = try Checkpoint.open(input, key: options.key, options: options.read)
        var notices: [PreparedConversion.Notice] = []
        if let text = try source.checkNeutralisedGlobals(strict: options.strictGlobals) {
            notices.append(.init(kind: source.neutralisedGlobalsAreTorchOnly ? .note : .warning, text: text))
        }
        let (sd, table) = try mapped(source, mapping: options.mapping, model: options.model, catalog: catalog)
        var meta = provenance(source, key: options.key)
        if let table { meta["mapping_table"] = table }
        if let model = options.model { meta["model"] = model.name }
        if !options.modelConfig.isEmpty { meta["model_config"] = options.modelConfig.joined(separator: " ") }
        let (carried, dropped) = OutputMetadata.fit(meta, first: provenanceKeys)
        if !dropped.isEmpty { notices.append(.init(kind: .note, text: "\(input): \(OutputMetadata.summary(dropped))")) }
        return PreparedConversion(source: source, stateDict: sd, table: table, metadata: carried, droppedMetadata: dropped, notices: notices)
    }

    /// Converts `input` to `output`; `progress` receives the bytes written so far.
    @discardableResult
    public static func convert(_ input: String, to output: String, options: ConversionOptions, catalog: MappingCatalog? = nil,
                               progress: ((Int) -> Void)? = nil) throws -> ConversionResult {
        try checkDestination(input: input, output: output, overwrite: options.overwrite, folder: options.maxShardSize != nil)
        return try write(prepare(input, options: options, catalog: catalog), to: output, options: options, progress: progress)
    }

    /// Refuses an output that is the input, that exists when overwriting was not asked for, or that is not a
    /// regular file (a symbolic link, a FIFO, …) — or, for a `folder` output (sharded), not a folder that
    /// `ShardedOutput` may replace, or the folder the input lies in.
    public static func checkDestination(input: String, output: String, overwrite: Bool, folder: Bool = false) throws {
        if sameFile(input, output) { throw ConversionError.outputIsInput(input: input) }
        if folder {
            if sameFile(PathText.parent(input).isEmpty ? "." : PathText.parent(input), output) {
                throw ConversionError.outputIsInput(input: input)
            }
            try ShardedOutput.checkDestination(output, overwrite: overwrite)
            return
        }
        // Checked again, atomically, when the output is moved into place (AtomicOutput).
        try AtomicOutput.checkDestination(output, overwrite: overwrite)
    }

    /// Writes a prepared conversion atomically (a temporary file renamed into place on success).
    @discardableResult
    public static func write(_ prepared: PreparedConversion, to output: String, options: ConversionOptions,
                             progress: ((Int) -> Void)? = nil) throws -> ConversionResult {
        let start = Date()
        // Tensors the reader could not represent: an error naming the first, unless they are to be skipped.
        let unreadable = prepared.source.unsupported
        if let u = unreadable.first, !options.skipUnsupported {
            throw CheckpointError("\(u.what) cannot be converted (--skip-unsupported leaves such tensors out)", file: prepared.source.file, key: u.name)
        }
        if options.format == .dcp {
            // A directory, written under a temporary name and renamed into place by the writer.
            try DistributedCheckpointWriter.write(prepared.stateDict, to: output, ranks: options.ranks, dtype: options.dtype,
                                                  extraMetadata: prepared.metadata.filter { provenanceKeys.contains($0.key) })
            let files = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
            let written = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: output + "/" + $1)[.size] as? Int) ?? 0) }
            var result = ConversionResult(input: prepared.source.file, output: output, prepared: prepared, bytesWritten: written,
                                          seconds: Date().timeIntervalSince(start))
            result.skipped = unreadable.map { ($0.name, "\($0.what) cannot be converted") }
            return result
        }
        if let limit = options.maxShardSize { return try writeShards(prepared, to: output, limit: limit, options: options, progress: progress) }
        let out = try AtomicOutput(destination: output, overwrite: options.overwrite)
        let skipped: [TensorEntry]
        let formatName: String
        switch options.format {
        case .safetensors:
            formatName = "safetensors"
            skipped = try SafetensorsWriter.write(prepared.stateDict, to: out, dtype: options.dtype, metadata: prepared.metadata,
                                                  skipUnsupported: options.skipUnsupported, progress: progress)
        case .h5:
            formatName = "HDF5"
            skipped = try HDF5Writer.write(prepared.stateDict, toPath: out.temporaryPath, dtype: options.dtype, metadata: prepared.metadata,
                                           skipUnsupported: options.skipUnsupported, progress: progress)
        case .dcp:
            formatName = "DCP"   // written above
            skipped = []
        }
        try out.commit(durable: options.durable)
        let written = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        var result = ConversionResult(input: prepared.source.file, output: output, prepared: prepared, bytesWritten: written,
                                      seconds: Date().timeIntervalSince(start))
        result.skipped = unreadable.map { ($0.name, "\($0.what) cannot be converted") } + skipped.map { ($0.name, "\(formatName) cannot hold \($0.dtype.cast(to: options.dtype).rawValue) tensors") }
        return result
    }

    /// The checkpoint seen through the chosen table (names unchanged for `none`), and the table's name.
    /// With a model, the mapped tensors must cover the model exactly (what `strict` loading needs).
    public static func mapped(_ sd: StateDict, mapping: MappingChoice, model target: ModelDescription?,
                              catalog: MappingCatalog? = nil) throws -> (StateDict, String?) {
        if mapping == .none && target == nil { return (sd, nil) }
        let expected = target.map { $0.parameterSpecs.map { ExpectedParameter(key: $0.key, shape: $0.shape, dtype: $0.dtype) } }
        let keys = expected.map { Set($0.map(\.key)) }
        let catalog = try catalog ?? MappingCatalog.standard()
        let table: MappingTable
        do {
            table = try catalog.resolve(mapping, for: sd, model: target?.name, family: target?.mappingFamily, expectedKeys: keys)
        } catch let e as MappingError where mapping == .auto && target == nil && e.kind == .noTableRecognises {
            return (sd, nil)  // names kept; the caller says so
        }
        let result = try table.apply(to: sd, expectedKeys: keys)
        if let expected, let target {
            let report = WeightLoader.check(result, expected: expected)
            if !report.succeeded { throw ConversionError.doesNotFitModel(file: sd.file, table: table.name, model: target.name, report: report) }
        }
        return (result.stateDict, table.name)
    }

    /// The input's name with the format's extension, in the same folder.
    public static func defaultOutput(for input: String, format: ConversionOptions.Format) -> String {
        URL(fileURLWithPath: input).deletingPathExtension().appendingPathExtension(format.rawValue).path
    }

    /// True when `a` and `b` name the same file (same device and inode), or the same normalised path when either
    /// does not exist yet.
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else {
            return URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
        }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// Provenance entries, carried before the checkpoint's own metadata when limits force a choice.
    public static let provenanceKeys = ["source_file", "source_format", "converted_by", "source_shards", "source_key", "mapping_table", "model", "model_config"]

    /// `__metadata__` for the output: where it came from plus the checkpoint's non-tensor leaves.
    public static func provenance(_ sd: StateDict, key: String?) -> [String: String] {
        var m: [String: String] = [
            "source_file": URL(fileURLWithPath: sd.file).lastPathComponent,
            "source_format": sd.format.rawValue,
            "converted_by": "weights",
        ]
        if let key { m["source_key"] = key }
        if !sd.shards.isEmpty { m["source_shards"] = String(sd.shards.count) }
        for e in sd.metadata where m[e.name] == nil { m[e.name] = e.value.description }
        return m
    }
}
