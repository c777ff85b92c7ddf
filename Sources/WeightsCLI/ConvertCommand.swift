import ArgumentParser
import Weights
import Foundation

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint to safetensors or HDF5, streaming one tensor at a time."
    )

    enum Target: String, ExpressibleByArgument, CaseIterable { case safetensors, h5, dcp }
    enum DTypeChoice: String, ExpressibleByArgument, CaseIterable { case keep, float32, float16, bfloat16 }

    @Argument(help: "Input checkpoint (never modified).")
    var input: String

    @Option(name: .shortAndLong, help: "Output file (default: the input's name with the new extension, same folder).")
    var output: String?

    @Option(name: .long, help: "Output format: safetensors, h5, or dcp (a PyTorch Distributed Checkpoint directory).")
    var to: Target = .safetensors

    @Option(name: .long, help: "With --to dcp: split each tensor's rows over this many ranks (__<r>_0.distcp files).")
    var ranks: Int = 1

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

    @Flag(name: .long, help: "Leave out the tensors the output format cannot hold (complex128 in safetensors, packed float4/float6 in HDF5), listing each on stderr, instead of refusing the conversion.")
    var skipUnsupported = false

    @Flag(name: .customLong("verify-crc"), help: "Also check the CRC-32 of zip members copied without decoding (reads them once more; members read into memory are always checked).")
    var verifyCRC = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes the input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    @Option(name: .customLong("max-shard-size"), help: ArgumentHelp("Write -o DIR as Hugging Face safetensors shards of at most SIZE each (5GB, 500MB, 2GiB, 100KB; decimal KB/MB/GB/TB, binary KiB/MiB/GiB/TiB) plus model.safetensors.index.json; one shard is written as DIR/model.safetensors.", valueName: "SIZE"))
    var maxShardSize: ShardSizeArgument?

    @Flag(name: .long, help: "Refuse a pickle that names globals outside the allowlist (by default they become inert placeholders and are listed on stderr).")
    var strict = false

    func run() throws {
        let format = ConversionOptions.Format(rawValue: to.rawValue) ?? .safetensors
        if ranks != 1 && to != .dcp { throw ValidationError("--ranks applies to --to dcp") }
        if maxShardSize != nil {
            guard output != nil else { throw ValidationError("--max-shard-size writes a folder: give it with -o DIR") }
            guard to == .safetensors else { throw ValidationError("--max-shard-size writes safetensors shards; it cannot be combined with --to \(to.rawValue)") }
        }
        let outPath = output ?? Converter.defaultOutput(for: input, format: format)
        try Converter.checkDestination(input: input, output: outPath, overwrite: force, folder: maxShardSize != nil)
        if !config.isEmpty && model == nil { throw ValidationError("--config needs --model") }
        let target = try model.map { name -> ModelDescription in
            let entry = try ModelRegistry.entry(name)
            return try entry.describe(options: entry.resolve(assignments: config))
        }
        var options = ConversionOptions(format: format, dtype: dtype == .keep ? nil : DType(rawValue: dtype.rawValue), key: key,
                                        mapping: MappingChoice(mapping), model: target, modelConfig: config, overwrite: force,
                                        durable: sync, strictGlobals: strict, skipUnsupported: skipUnsupported)
        options.read = ReadOptions(verifyCRC: verifyCRC, maxOutputBytes: maxOutputBytes?.bytes)
        options.ranks = ranks
        options.maxShardSize = maxShardSize?.bytes
        let prepared: PreparedConversion
        do {
            prepared = try Converter.prepare(input, options: options)
        } catch let ConversionError.doesNotFitModel(file, table, model, report) {
            FileHandle.standardError.write(Data(TerminalText.escapeLines(report.rendered()).utf8))
            throw ConversionError.doesNotFitModel(file: file, table: table, model: model, report: report)
        }
        for n in prepared.notices { printNotice(n.text, kind: n.kind.rawValue) }
        let sd = prepared.stateDict
        let inputSize = (sd.shards.isEmpty ? [input] : sd.shards).reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        let bar = ProgressBar(total: prepared.outputBytes(cast: options.dtype), enabled: inputSize > 64 << 20 && isatty(STDERR_FILENO) != 0)
        let result = try Converter.write(prepared, to: outPath, options: options, progress: bar.update)
        bar.finish()
        for s in result.skipped { printNotice("skipped '\(s.name)': \(s.reason)", kind: "note") }
        let shards = result.files.filter { $0.hasSuffix(".safetensors") }.count
        print("\(TerminalText.escape(input)) (\(sd.format.rawValue)\(sd.shards.isEmpty ? "" : ", \(sd.shards.count) shards")) -> \(TerminalText.escape(outPath)) (\(to.rawValue)\(maxShardSize == nil ? "" : ", \(shards) shard\(shards == 1 ? "" : "s")"))")
        if let tableName = prepared.table {
            print("mapping: \(TerminalText.escape(tableName)) (tensors renamed and transformed to model keys)")
        } else if mapping == "auto" {
            print("mapping: none (no mapping table recognises these keys; names kept as in the checkpoint)")
        }
        print("tensors: \(sd.tensors.count - result.skipped.count)\(result.skipped.isEmpty ? "" : " (\(result.skipped.count) skipped)")  parameters: \(formatCount(sd.totalElements))  written: \(formatBytes(result.bytesWritten))  time: \(String(format: "%.2f", result.seconds)) s")
        if !sd.metadata.isEmpty { print("metadata entries carried: \(sd.metadata.count - prepared.droppedMetadata.count)") }
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

/// `--max-shard-size`: a size as Hugging Face spells it (`ShardSize`).
struct ShardSizeArgument: ExpressibleByArgument, Sendable {
    let bytes: Int
    init?(argument: String) {
        guard let n = ShardSize.parse(argument) else { return nil }
        bytes = n
    }
}
