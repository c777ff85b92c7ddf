import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// Hugging Face sharded checkpoints read as one: an index (`model.safetensors.index.json`,
/// `pytorch_model.bin.index.json`, any file in that layout) whose `weight_map` names, for every tensor, the shard
/// file holding it, and whose `metadata.total_size` gives the tensor bytes of the whole set.
///
/// - Each shard's format is sniffed as for any file (safetensors, PyTorch zip or legacy `.bin`); tensors are read
///   lazily from their shard, and keep their zero-copy spans.
/// - Order: shard files in the byte order of their names (`model-00001-of-00004…` first), the tensors of each in
///   that shard's own order — the order the writer had. (The index's `weight_map` is sorted by name by
///   transformers, which loses it.)
/// - The index and the shards must agree exactly, else one error naming the index, the shard and the tensor: a
///   shard missing or unreadable, a tensor listed but absent from its shard, a tensor in a shard that the index
///   does not list there (not at all, or under another shard: the same name in two shards) — refused, not
///   noted, since it means the index belongs to another save.
/// - `total_size`: for safetensors shards (whose tensors cannot share bytes) it must equal the sum of the tensor
///   bytes. `.bin` shards count each pickled storage once at its full size (tied weights share one, a view may
///   use part of one), which the tensor list does not show; there it must not exceed the shards' file sizes.
///   An index without `total_size` is accepted.
/// - Shard names are relative paths inside the index's folder: an absolute name, a `..` component or a NUL is
///   refused, and so is a shard that resolves (through symbolic links) outside that folder — except into the
///   `blobs` folder of a Hugging Face cache entry, where `snapshots/<revision>/` holds links into `../../blobs/`.
/// - Pickle globals, unsupported tensors and metadata of all shards are merged (identical metadata entries once);
///   the index's own metadata other than `total_size` / `total_parameters` is carried too.
package enum ShardedCheckpoint {
    /// Largest index accepted (a 100 000-tensor index is about 10 MB).
    public static let maxIndexBytes = 64 << 20
    /// Most JSON values in an index (bounds the parse).
    public static let maxIndexValues = 4_000_000

    /// The parsed index.
    struct Index {
        let path: String
        let totalSize: Int?
        let metadata: [MetadataEntry]
        /// Tensor name → shard name, in the index's order.
        let weightMap: [(name: String, shard: String)]
    }

    /// True when `path` is a regular file whose first bytes no checkpoint format claims and that starts with a
    /// JSON object (`{` after optional whitespace): an index, as far as the format can be told from content.
    static func isIndex(_ path: String) -> Bool {
        guard let (fd, size) = try? InputFile.open(path) else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: min(size, 64))
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        head = Array(head.prefix(n))
        let claimed = head.withUnsafeBytes { Checkpoint.headClaim($0) }
        guard claimed == nil else { return false }
        return head.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) } == UInt8(ascii: "{")
    }

    /// The `*.index.json` regular files (or links to them) directly inside `directory`, sorted by name.
    static func indexes(inDirectory directory: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw CheckpointError("cannot list the directory: \(error.localizedDescription)", file: directory)
        }
        return names.filter { name in
            guard name.hasSuffix(".index.json") else { return false }
            var st = stat()
            return stat(join(directory, name), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { join(directory, $0) }
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    // MARK: index

    static func parseIndex(_ path: String) throws -> Index {
        let file = try MappedFile(path: path)
        guard file.size <= maxIndexBytes else {
            throw CheckpointError("index of \(file.size) bytes exceeds the \(maxIndexBytes)-byte limit", file: path)
        }
        let root: HeaderJSON.Node
        do {
            root = try HeaderJSON.parse(file.bytes, base: 0, maxArrayItems: 64, maxValues: maxIndexValues)
        } catch let e as HeaderJSON.ParseError {
            throw CheckpointError("index: \(e.message)", file: path, offset: e.offset)
        }
        try file.checkIntact()
        guard case .object(let members) = root.value else {
            throw CheckpointError("index is \(root.value.kind), expected a JSON object with 'weight_map'", file: path, offset: root.offset)
        }
        var totalSize: Int?
        var metadata: [MetadataEntry] = []
        var weightMap: [(name: String, shard: String)]?
        for m in members {
            switch m.key {
            case "weight_map":
                guard case .object(let pairs) = m.node.value else {
                    throw CheckpointError("index: 'weight_map' is \(m.node.value.kind), expected an object of tensor name → shard file", file: path, offset: m.node.offset)
                }
                weightMap = try pairs.map { p in
                    guard case .string(let shard) = p.node.value else {
                        throw CheckpointError("index: weight_map value is \(p.node.value.kind), expected a shard file name", file: path, offset: p.node.offset, key: p.key)
                    }
                    return (p.key, shard)
                }
            case "metadata":
                if case .null = m.node.value { continue }
                guard case .object(let pairs) = m.node.value else {
                    throw CheckpointError("index: 'metadata' is \(m.node.value.kind), expected an object", file: path, offset: m.node.offset)
                }
                for p in pairs {
                    if p.key == "total_size" {
                        guard let n = integral(p.node), n >= 0 else {
                            throw CheckpointError("index: metadata.total_size is not a non-negative integer", file: path, offset: p.node.offset, key: "total_size")
                        }
                        totalSize = n
                    } else if p.key != "total_parameters", let v = metaValue(p.node) {
                        metadata.append(MetadataEntry(name: p.key, value: v))
                    }
                }
            default:
                continue  // other top-level keys carry nothing we read
            }
        }
        guard let weightMap else {
            throw CheckpointError("index has no 'weight_map' (a Hugging Face index maps every tensor name to its shard file)", file: path, offset: root.offset)
        }
        return Index(path: path, totalSize: totalSize, metadata: metadata, weightMap: weightMap)
    }

    /// An integer literal, or a number with an exact integral value below 2^53 (some writers put `1.5e10`).
    static func integral(_ node: HeaderJSON.Node) -> Int? {
        if let n = node.int { return n }
        guard case .number(let text) = node.value, let d = Double(text), d.isFinite, d == d.rounded(), abs(d) < 9.007199254740992e15 else { return nil }
        return Int(d)
    }

    static func metaValue(_ node: HeaderJSON.Node) -> MetaValue? {
        switch node.value {
        case .null: return MetaValue.none
        case .bool(let b): return .bool(b)
        case .string(let s): return .string(s)
        case .number(let t): return node.int.map { .int(Int64($0)) } ?? Double(t).map { .float($0) } ?? .string(t)
        case .array, .object: return nil
        }
    }

    // MARK: shard paths

    /// The path of shard `name` of the index at `index`, checked to stay inside the index's folder.
    static func shardPath(_ name: String, index: String) throws -> String {
        func refuse(_ why: String) -> CheckpointError {
            CheckpointError("index names shard '\(name)', which \(why); refused (shards must lie in the index's folder)", file: index)
        }
        guard !name.isEmpty else { throw refuse("is empty") }
        guard !name.utf8.contains(0) else { throw refuse("contains a NUL byte") }
        guard !name.hasPrefix("/") else { throw refuse("is an absolute path") }
        guard !name.split(separator: "/", omittingEmptySubsequences: true).contains("..") else { throw refuse("has a '..' component") }
        let folder = PathText.parent(index)
        let path = folder.isEmpty ? name : join(folder, name)
        // Symbolic links: the resolved shard must lie inside the resolved folder (or a Hugging Face cache's blobs).
        guard let realFolder = realPath(folder.isEmpty ? "." : folder) else {
            throw CheckpointError("cannot resolve the index's folder: \(String(cString: strerror(errno)))", file: index)
        }
        guard let real = realPath(path) else {
            let e = errno
            throw CheckpointError(e == ENOENT ? "shard file is missing" : "cannot open the shard: \(String(cString: strerror(e)))",
                                  file: index, shard: name)
        }
        if inside(real, realFolder) { return path }
        let parent = PathText.parent(realFolder)
        if PathText.lastComponent(parent) == "snapshots" {
            let blobs = PathText.join(PathText.parent(parent), "blobs")
            if inside(real, blobs) { return path }
        }
        throw refuse("resolves (through a symbolic link) to \(real), outside \(realFolder)")
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    static func inside(_ path: String, _ folder: String) -> Bool {
        folder == "/" ? path.hasPrefix("/") : path.hasPrefix(folder + "/")
    }

    // MARK: reading

    /// Runs `body`, reporting any error as the shard's: file = the index, shard = its name there.
    static func inShard<T>(index: String, shard: String, path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch var e as CheckpointError {
            if e.shard == nil && (e.file == nil || e.file == path) { e.file = index; e.shard = shard }
            throw e
        } catch {
            throw CheckpointError("\(error)", file: index, shard: shard)
        }
    }

    /// Reads the sharded checkpoint whose index is `path` (see the type's notes).
    static func read(index path: String, options: ReadOptions) throws -> StateDict {
        let index = try parseIndex(path)
        var listed: [String: String] = [:]
        listed.reserveCapacity(index.weightMap.count)
        for (name, shard) in index.weightMap { listed[name] = shard }
        let shardNames = Set(index.weightMap.map(\.shard)).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !shardNames.isEmpty else { throw CheckpointError("index lists no tensors (its weight_map is empty)", file: path) }

        var out: StateDict?
        var found = Set<String>()
        var fileBytes = 0
        var allSafetensors = true
        var seenMeta = Set<String>()
        var seenGlobals = Set<String>()   // a set: many shards times many distinct globals would be quadratic
        // Every shard located (and its path checked) before any is read.
        let shardFiles = try shardNames.map { try shardPath($0, index: path) }
        for (shard, shardFile) in zip(shardNames, shardFiles) {
            let sd = try inShard(index: path, shard: shard, path: shardFile) { () -> StateDict in
                let format = try Checkpoint.sniff(shardFile)
                return try Checkpoint.read(format, path: shardFile, options: options)
            }
            fileBytes = StateDict.saturatingAdd(fileBytes, Checkpoint.fileSize(shardFile))
            if sd.format != .safetensors { allSafetensors = false }
            if out == nil {
                out = StateDict(format: sd.format, file: path)
                out?.metadata = index.metadata
                for m in index.metadata { seenMeta.insert(m.name + "\u{0}" + m.value.description) }
            }
            let names = sd.tensors.map(\.name) + sd.unsupported.map(\.name)
            for name in names {
                guard let owner = listed[name] else {
                    throw CheckpointError("tensor is in the shard but not in the index", file: path, shard: shard, key: name)
                }
                guard owner == shard else {
                    throw CheckpointError("tensor is in this shard, but the index lists it under shard '\(owner)'", file: path, shard: shard, key: name)
                }
                found.insert(name)
            }
            for t in sd.tensors {
                out?.tensors.append(TensorEntry(name: t.name, dtype: t.dtype, shape: t.shape, location: "\(shard), \(t.location)", span: t.span) {
                    try inShard(index: path, shard: shard, path: shardFile) { try t.load() }
                })
            }
            out?.unsupported += sd.unsupported
            for g in sd.neutralisedGlobals where seenGlobals.insert(g).inserted { out?.neutralisedGlobals.append(g) }
            for m in sd.metadata where seenMeta.insert(m.name + "\u{0}" + m.value.description).inserted { out?.metadata.append(m) }
            out?.shards.append(shardFile)
        }
        guard var sd = out else { throw CheckpointError("index lists no tensors", file: path) }
        if found.count != listed.count, let missing = index.weightMap.first(where: { !found.contains($0.name) }) {
            throw CheckpointError("tensor is listed in the index but absent from its shard", file: path, shard: missing.shard, key: missing.name)
        }
        if let declared = index.totalSize {
            let sum = sd.tensors.reduce(0) { StateDict.saturatingAdd($0, $1.byteCount) }
            if allSafetensors && sd.unsupported.isEmpty && declared != sum {
                throw CheckpointError("metadata.total_size is \(declared) bytes but the \(sd.tensors.count) tensors of the \(shardNames.count) shards hold \(sum)",
                                      file: path, key: "total_size")
            }
            if !allSafetensors && declared > fileBytes {
                throw CheckpointError("metadata.total_size is \(declared) bytes, more than the \(shardNames.count) shard files hold (\(fileBytes) bytes)",
                                      file: path, key: "total_size")
            }
        }
        try options.checkOutputSize(sd, fileSize: fileBytes)
        sd.file = path
        return sd
    }
}
