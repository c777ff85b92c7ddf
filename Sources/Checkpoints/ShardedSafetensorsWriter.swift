import TensorCore

/// Sharded safetensors output in Hugging Face's layout: `model-00001-of-0000N.safetensors` … plus
/// `model.safetensors.index.json`, or one plain `model.safetensors` (no index) when everything fits in one shard.
///
/// - Placement is huggingface_hub's `split_torch_state_dict_into_shards` (which transformers' `save_pretrained`
///   uses): tensors in source order, greedily; a tensor that would take the current shard over the limit starts
///   the next; a tensor larger than the limit alone gets a shard of its own, numbered where huggingface_hub numbers
///   it — before the shard still being filled. No tensor is split. Sizes are the bytes written (after `--dtype`).
/// - Each shard's `__metadata__` is `{"format": "pt"}` plus the conversion's metadata (provenance).
/// - The index is what transformers writes: `json.dumps(index, indent=2, sort_keys=True)` + newline, with
///   `metadata.total_size` (the tensor bytes) and `weight_map` (name → shard file, sorted by name); non-ASCII
///   as `\uXXXX`, as Python's `ensure_ascii`.
/// - The set is written through `ShardedOutput`: nothing appears at the destination until every file is written.
public enum ShardedSafetensorsWriter {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// `model-0000i-of-0000N.safetensors` (1-based; five digits at least, as huggingface_hub's `{:05d}`).
    public static func shardName(_ i: Int, of n: Int) -> String {
        "model-\(pad(i))-of-\(pad(n)).safetensors"
    }

    static func pad(_ i: Int) -> String {
        let s = String(i)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }

    /// huggingface_hub's placement of tensors of `sizes` bytes under `limit` (see the type's notes): item
    /// indices per shard, in shard order.
    public static func place(_ sizes: [Int], limit: Int) -> [[Int]] {
        var shards: [[Int]] = []
        var current: [Int] = []
        var currentSize = 0
        for (i, n) in sizes.enumerated() {
            if n > limit { shards.append([i]); continue }
            if currentSize + n > limit {  // both ≤ limit: no overflow
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(i)
            currentSize += n
        }
        if !current.isEmpty { shards.append(current) }
        return shards
    }

    /// What `write` produced.
    public struct Written: Sendable {
        /// The files of the set, in shard order, then the index (paths under the destination folder).
        public let files: [String]
        public let shardCount: Int
        /// Tensors left out under `skipUnsupported`.
        public let skipped: [TensorEntry]
    }

    /// Writes `sd` into the folder `destination` as shards of at most `maxShardSize` bytes (see the type's notes).
    @discardableResult
    public static func write(_ sd: StateDict, toFolder destination: String, maxShardSize: Int, dtype: DType?, metadata: [String: String],
                             overwrite: Bool, durable: Bool, skipUnsupported: Bool = false, progress: ((Int) -> Void)? = nil) throws -> Written {
        guard maxShardSize > 0 else { throw CheckpointError("the shard size limit must be at least 1 byte", file: destination) }
        let (items, skipped) = try WriterPlan.make(sd, cast: dtype, file: destination, format: "safetensors", holds: SafetensorsWriter.holds,
                                                   skipUnsupported: skipUnsupported)
        var meta = metadata
        if meta["format"] == nil { meta["format"] = "pt" }
        try OutputMetadata.check(meta, file: destination)
        var placement = place(items.map(\.byteCount), limit: maxShardSize)
        if placement.isEmpty { placement = [[]] }  // no tensors: one empty model.safetensors
        let n = placement.count
        let output = try ShardedOutput(destination: destination, overwrite: overwrite)
        var done = 0
        var names: [String] = []
        var weightMap: [(String, String)] = []
        for (i, members) in placement.enumerated() {
            let name = n == 1 ? singleName : shardName(i + 1, of: n)
            names.append(name)
            var part = StateDict(format: .safetensors, file: sd.file)
            part.tensors = members.map { items[$0].entry }
            for m in members { weightMap.append((items[m].entry.name, name)) }
            let file = try output.file(name)
            let base = done
            try CheckpointError.withContext(file: destination + "/" + name) {
                _ = try SafetensorsWriter.write(part, to: file, dtype: dtype, metadata: meta, progress: { progress?(base + $0) })
            }
            done += members.reduce(0) { $0 + items[$1].byteCount }
            try output.finish(file, durable: durable)
        }
        if n > 1 {
            let total = items.reduce(0) { StateDict.saturatingAdd($0, $1.byteCount) }
            let file = try output.file(indexName)
            try file.write(indexJSON(weightMap: weightMap, totalSize: total))
            try output.finish(file, durable: durable)
            names.append(indexName)
        }
        try output.commit(durable: durable)
        let folder = destination.hasSuffix("/") ? destination : destination + "/"
        return Written(files: names.map { folder + $0 }, shardCount: n, skipped: skipped)
    }

    /// The index as transformers writes it (see the type's notes).
    public static func indexJSON(weightMap: [(String, String)], totalSize: Int) -> [UInt8] {
        let sorted = weightMap.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }  // UTF-8 order = code-point order
        var s = "{\n  \"metadata\": {\n    \"total_size\": \(totalSize)\n  },\n  \"weight_map\": {"
        s += sorted.isEmpty ? "}" : "\n" + sorted.map { "    \(pythonQuote($0.0)): \(pythonQuote($0.1))" }.joined(separator: ",\n") + "\n  }"
        s += "\n}\n"
        return Array(s.utf8)
    }

    /// `s` as Python's `json.dumps` writes a string with `ensure_ascii=True`.
    public static func pythonQuote(_ s: String) -> String {
        var out = "\""
        func u(_ v: UInt32) {
            let h = String(v, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        }
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value >= 0x20 && c.value < 0x7F {
                    out.unicodeScalars.append(c)
                } else if c.value > 0xFFFF {
                    let v = c.value - 0x10000
                    u(0xD800 + (v >> 10)); u(0xDC00 + (v & 0x3FF))
                } else {
                    u(c.value)
                }
            }
        }
        return out + "\""
    }
}

/// A shard size limit as Hugging Face spells it: a number and a unit, case-insensitive, spaces allowed around.
/// Decimal `KB`, `MB`, `GB`, `TB` (10^3 … 10^12, huggingface_hub's `parse_size_to_int`, which also takes a
/// fraction such as `1.5GB`, truncated to whole bytes), binary `KiB`, `MiB`, `GiB`, `TiB` (2^10 …, transformers'
/// `convert_file_size_to_int`), or a plain byte count. Differences, on purpose: the case never matters (transformers
/// reads a lower-case `b`, `5Gb`, as bits), and fractions are exact (huggingface_hub multiplies a float, which can
/// land one byte lower).
public enum ShardSize {
    static let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                         ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000)]

    /// Bytes for `text`, or nil when it is not a size, or is zero or over Int.max bytes.
    public static func parse(_ text: String) -> Int? {
        var number = text.trimmingASCIIWhitespace().uppercased()
        var multiplier = 1
        if let (unit, m) = units.first(where: { number.hasSuffix($0.0) }) {
            number = String(number.dropLast(unit.count)).trimmingASCIIWhitespace()
            multiplier = m
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }), !parts.allSatisfy(\.isEmpty) else { return nil }
        guard let whole = parts[0].isEmpty ? 0 : Int(parts[0]) else { return nil }
        var (value, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        if parts.count == 2 {
            // ⌊0.digits × multiplier⌋, exactly: 18 digits are more than any multiplier here can resolve.
            let digits = parts[1].prefix(18)
            guard let fraction = digits.isEmpty ? 0 : Int(digits) else { return nil }
            var scale = 1
            for _ in digits { scale *= 10 }
            let wide = multiplier.multipliedFullWidth(by: fraction)
            let add = scale.dividingFullWidth((wide.high, wide.low)).quotient
            (value, overflow) = value.addingReportingOverflow(add)
            guard !overflow else { return nil }
        }
        return value > 0 ? value : nil
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let ws: Set<Character> = [" ", "\t", "\n", "\r"]
        return String(String(drop { ws.contains($0) }.reversed()).drop { ws.contains($0) }.reversed())
    }
}
