import ArgumentParser
import Weights
import Foundation

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint to safetensors or HDF5, streaming one tensor at a time."
    )

    enum Target: String, ExpressibleByArgument, CaseIterable { case safetensors, h5 }
    enum DTypeChoice: String, ExpressibleByArgument, CaseIterable { case keep, float32, float16, bfloat16 }

    @Argument(help: "Input checkpoint (never modified).")
    var input: String

    @Option(name: .shortAndLong, help: "Output file (default: the input's name with the new extension, same folder).")
    var output: String?

    @Option(name: .long, help: "Output format: safetensors or h5.")
    var to: Target = .safetensors

    @Option(name: .long, help: "Cast floating tensors: keep (bit-exact), float32, float16, bfloat16. Integer and bool tensors are always kept.")
    var dtype: DTypeChoice = .keep

    @Option(name: .long, help: "Only the subtree under this dotted path (e.g. state_dict).")
    var key: String?

    @Option(name: .long, help: "Mapping table: auto (detect; keep the names when no table recognises the file), none (keep the flattened checkpoint names), a table name, or a table file.")
    var mapping: String = "auto"

    @Option(name: .long, help: "Target model (see `weights models`): the output must then load onto it under strict.")
    var model: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("Option of the --model, KEY=VALUE (repeatable; see `weights models`).", valueName: "KEY=VALUE"))
    var config: [String] = []

    @Flag(name: .long, help: "Overwrite an existing output file.")
    var force = false

    @Flag(name: .long, help: "Wait until the output is on disk (fsync) before moving it into place.")
    var sync = false

    @Flag(name: .customLong("verify-crc"), help: "Also check the CRC-32 of zip members copied without decoding (reads them once more; members read into memory are always checked).")
    var verifyCRC = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes the input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    @Flag(name: .long, help: "Refuse a pickle that names globals outside the allowlist (by default they become inert placeholders and are listed on stderr).")
    var strict = false

    func run() throws {
        let outPath = output ?? Self.defaultOutput(for: input, to: to)
        let fm = FileManager.default
        if Self.sameFile(input, outPath) {
            throw CLIFailure("refusing to write over the input file \(input)")
        }
        // Checked again, atomically, when the output is moved into place (AtomicOutput).
        try AtomicOutput.checkDestination(outPath, overwrite: force)
        let source = try Checkpoint.open(input, key: key, options: ReadOptions(verifyCRC: verifyCRC, maxOutputBytes: maxOutputBytes?.bytes))
        if let notice = try source.checkNeutralisedGlobals(strict: strict) { printNotice(notice, kind: source.neutralisedGlobalsAreTorchOnly ? "note" : "warning") }
        if !config.isEmpty && model == nil { throw ValidationError("--config needs --model") }
        let target = try model.map { try ModelRegistry.entry($0).describe(options: ModelRegistry.entry($0).resolve(assignments: config)) }
        let (sd, tableName) = try Self.mapped(source, mapping: MappingChoice(mapping), model: target)
        let cast: DType? = dtype == .keep ? nil : DType(rawValue: dtype.rawValue)
        var meta = Self.provenance(source, key: key)
        if let tableName { meta["mapping_table"] = tableName }
        if let model { meta["model"] = model }
        if !config.isEmpty { meta["model_config"] = config.joined(separator: " ") }
        let (carried, dropped) = OutputMetadata.fit(meta, first: Self.provenanceKeys)
        if !dropped.isEmpty { printNotice("\(input): \(OutputMetadata.summary(dropped))", kind: "note") }

        let inputSize = (try? fm.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        let bar = ProgressBar(total: Self.outputBytes(sd, cast: cast), enabled: inputSize > 64 << 20 && isatty(STDERR_FILENO) != 0)
        let start = Date()
        switch to {
        case .safetensors:
            let out = try AtomicOutput(destination: outPath, overwrite: force)
            try SafetensorsWriter.write(sd, to: out, dtype: cast, metadata: carried, progress: bar.update)
            try out.commit(durable: sync)
        case .h5:
            let out = try AtomicOutput(destination: outPath, overwrite: force)
            try HDF5Writer.write(sd, toPath: out.temporaryPath, dtype: cast, metadata: carried, progress: bar.update)
            try out.commit(durable: sync)
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        let written = (try? fm.attributesOfItem(atPath: outPath)[.size] as? Int) ?? 0
        print("\(TerminalText.escape(input)) (\(sd.format.rawValue)) -> \(TerminalText.escape(outPath)) (\(to.rawValue))")
        if let tableName {
            print("mapping: \(TerminalText.escape(tableName)) (tensors renamed and transformed to model keys)")
        } else if mapping == "auto" {
            print("mapping: none (no mapping table recognises these keys; names kept as in the checkpoint)")
        }
        print("tensors: \(sd.tensors.count)  parameters: \(formatCount(sd.totalElements))  written: \(formatBytes(written))  time: \(String(format: "%.2f", seconds)) s")
        if !sd.metadata.isEmpty { print("metadata entries carried: \(sd.metadata.count - dropped.count)") }
    }

    /// The checkpoint seen through the chosen table (names unchanged for `none`), and the table's name.
    /// With a model, the mapped tensors must cover the model exactly (what `strict` loading needs).
    static func mapped(_ sd: StateDict, mapping: MappingChoice, model target: ModelDescription?) throws -> (StateDict, String?) {
        let model = target?.name
        if mapping == .none && model == nil { return (sd, nil) }
        let expected = target.map { $0.parameterSpecs.map { ExpectedParameter(key: $0.key, shape: $0.shape, dtype: $0.dtype) } }
        let keys = expected.map { Set($0.map(\.key)) }
        let catalog = try MappingCatalog.standard()
        let table: MappingTable
        do {
            table = try catalog.resolve(mapping, for: sd, model: model, family: target?.mappingFamily, expectedKeys: keys)
        } catch let e as MappingError where mapping == .auto && model == nil && e.description.contains("no mapping table recognises") {
            return (sd, nil)  // the summary says the names were kept
        }
        let result = try table.apply(to: sd, expectedKeys: keys)
        if let expected {
            let report = WeightLoader.check(result, expected: expected)
            if !report.succeeded {
                FileHandle.standardError.write(Data(report.rendered().utf8))
                throw CLIFailure("\(sd.file): mapped through \(table.name), the tensors do not load onto \(model ?? "the model") under strict: \(report.problems.joined(separator: "; "))")
            }
        }
        return (result.stateDict, table.name)
    }

    static func defaultOutput(for input: String, to: Target) -> String {
        let url = URL(fileURLWithPath: input)
        let ext = to == .safetensors ? "safetensors" : "h5"
        return url.deletingPathExtension().appendingPathExtension(ext).path
    }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else {
            return URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
        }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    static func outputBytes(_ sd: StateDict, cast: DType?) -> Int {
        sd.tensors.reduce(0) { acc, t in
            let dt = (cast != nil && t.dtype.isFloatingPoint) ? cast! : t.dtype
            return acc + (ShapeMath.byteCount(t.shape, dt) ?? 0)
        }
    }

    /// Provenance entries, carried before the checkpoint's own metadata when limits force a choice.
    static let provenanceKeys = ["source_file", "source_format", "converted_by", "source_key", "mapping_table", "model", "model_config"]

    /// `__metadata__` for the output: where it came from plus the checkpoint's non-tensor leaves.
    static func provenance(_ sd: StateDict, key: String?) -> [String: String] {
        var m: [String: String] = [
            "source_file": URL(fileURLWithPath: sd.file).lastPathComponent,
            "source_format": sd.format.rawValue,
            "converted_by": "weights",
        ]
        if let key { m["source_key"] = key }
        for e in sd.metadata where m[e.name] == nil { m[e.name] = e.value.description }
        return m
    }
}

/// A one-line progress bar on stderr (only when enabled: a terminal and a large input).
final class ProgressBar {
    let total: Int
    let enabled: Bool
    private var lastDrawn = -1

    init(total: Int, enabled: Bool) { self.total = max(total, 1); self.enabled = enabled }

    func update(_ done: Int) {
        guard enabled else { return }
        let pct = min(100, done * 100 / total)
        guard pct != lastDrawn else { return }
        lastDrawn = pct
        let width = 40
        let filled = pct * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(pct)%".utf8))
    }

    func finish() {
        if enabled && lastDrawn >= 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
