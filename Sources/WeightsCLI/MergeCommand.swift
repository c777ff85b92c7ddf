import ArgumentParser
import Weights
import Foundation

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge checkpoints into one safetensors or HDF5 file, later files overriding earlier ones (Python's dict.update).",
        discussion: """
        An overridden tensor keeps its first position; new names are appended. The output's metadata records where \
        each tensor came from (merge_sources, merge_map; see README). Give FILE:KEY to take the subtree under KEY \
        of that file (a path that exists as written is always a path).
        """
    )

    @Argument(help: ArgumentHelp("Input checkpoints, in order (never modified); FILE or FILE:KEY.", valueName: "input"))
    var inputs: [String]

    @Option(name: .shortAndLong, help: "Output file (required; never one of the inputs).")
    var output: String

    @Flag(name: .customLong("no-override"), help: "Refuse inputs that share a tensor name, naming the key and both files.")
    var noOverride = false

    enum Target: String, ExpressibleByArgument, CaseIterable { case safetensors, h5 }

    @Option(name: .long, help: "Output format: safetensors or h5.")
    var to: Target = .safetensors

    @Option(name: .customLong("max-shard-size"), help: ArgumentHelp("Write -o DIR as Hugging Face safetensors shards of at most SIZE each (5GB, 500MB, 2GiB) plus model.safetensors.index.json, as `convert --max-shard-size` does.", valueName: "SIZE"))
    var maxShardSize: ShardSizeArgument?

    @Option(name: .long, help: "Cast floating tensors: keep (bit-exact), float32, float16, bfloat16. Integer and bool tensors are always kept.")
    var dtype: ConvertCommand.DTypeChoice = .keep

    @Flag(name: .long, help: "Overwrite an existing output file.")
    var force = false

    @Flag(name: .long, help: "Wait until the output is on disk (fsync) before moving it into place.")
    var sync = false

    @Flag(name: .long, help: "Leave out the tensors the output format cannot hold or the readers cannot represent, listing each on stderr, instead of refusing the merge.")
    var skipUnsupported = false

    @Flag(name: .customLong("verify-crc"), help: "Also check the CRC-32 of zip members copied without decoding.")
    var verifyCRC = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes each input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    @Flag(name: .long, help: "Refuse a pickle that names globals outside the allowlist (by default they become inert placeholders and are listed on stderr).")
    var strict = false

    func validate() throws {
        if inputs.count < 2 { throw ValidationError("merge needs at least two input files") }
        if maxShardSize != nil && to != .safetensors { throw ValidationError("--max-shard-size writes safetensors shards; it cannot be combined with --to \(to.rawValue)") }
    }

    func run() throws {
        let parsed = inputs.map(MergeInput.parse)
        var out = ConversionOptions(format: ConversionOptions.Format(rawValue: to.rawValue) ?? .safetensors,
                                    dtype: dtype == .keep ? nil : DType(rawValue: dtype.rawValue), mapping: .none, overwrite: force,
                                    durable: sync, strictGlobals: strict, skipUnsupported: skipUnsupported)
        out.read = ReadOptions(verifyCRC: verifyCRC, maxOutputBytes: maxOutputBytes?.bytes)
        out.maxShardSize = maxShardSize?.bytes
        let options = MergeOptions(override: !noOverride, output: out)
        try Merger.checkDestination(inputs: parsed, output: output, overwrite: force, folder: maxShardSize != nil)
        let prepared = try Merger.prepare(parsed, options: options)
        for n in prepared.conversion.notices { printNotice(n.text, kind: n.kind.rawValue) }
        let total = prepared.inputs.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.file)[.size] as? Int) ?? 0) }
        let bar = ProgressBar(total: prepared.conversion.outputBytes(cast: out.dtype), enabled: total > 64 << 20 && isatty(STDERR_FILENO) != 0)
        let result = try Merger.write(prepared, to: output, options: options, progress: bar.update)
        bar.finish()
        for s in result.skipped { printNotice("skipped '\(s.name)': \(s.reason)", kind: "note") }
        var counts = [Int](repeating: 0, count: prepared.inputs.count)
        for s in prepared.sources { counts[s] += 1 }
        for (i, sd) in prepared.inputs.enumerated() {
            let key = parsed[i].key.map { ", key \(TerminalText.escape($0))" } ?? ""
            print("\(i): \(TerminalText.escape(sd.file)) (\(sd.format.rawValue)\(key)): \(sd.tensors.count) tensors, \(counts[i]) in the output")
        }
        print("-> \(TerminalText.escape(output)) (\(to.rawValue)\(result.files.isEmpty ? "" : result.files.count == 1 ? ", 1 shard" : ", \(result.files.count - 1) shards + index"))")
        print("tensors: \(prepared.conversion.stateDict.tensors.count - result.skipped.count + prepared.conversion.source.unsupported.count)"
              + "\(result.skipped.isEmpty ? "" : " (\(result.skipped.count) skipped)")  overridden: \(prepared.overridden.count)"
              + "  written: \(formatBytes(result.bytesWritten))  time: \(String(format: "%.2f", result.seconds)) s")
    }
}
