import TensorCore

/// The `.metadata` file of a PyTorch Distributed Checkpoint: a plain pickle of
/// `torch.distributed.checkpoint.metadata.Metadata` (torch 2.15 layout, `CURRENT_DCP_VERSION` 1.0.0):
///
/// - `state_dict_metadata`: flattened name → `TensorStorageMetadata(properties, size, chunks)` or
///   `BytesStorageMetadata()`; `properties` is a `TensorProperties` whose pickled state is the tuple
///   `(dtype, layout, requires_grad, _MEM_FORMAT_ENCODING, pin_memory[, strides])`; each chunk a
///   `ChunkStorageMetadata(offsets, sizes)` (torch.Size values).
/// - `storage_data`: `MetadataIndex(fqn, offset, index)` → `filesystem._StorageInfo(relative_path, offset, length
///   [, transform_descriptors])`: where each chunk's (or bytes item's) payload lies.
/// - `planner_data`, `storage_meta` (a `StorageMeta` holding the checkpoint path as a `pathlib` path), `version`.
///
/// The pickle runs on the safe machine with no persistent loads. The classes above are interpreted as data — the
/// machine builds inert objects recording their state — and are accepted here only, for this file; any other
/// global outside the machine's own allowlist refuses the file, naming it.
struct DCPMetadata {
    enum Item {
        case tensor(dtype: DType, size: [Int], chunks: [(offsets: [Int], sizes: [Int])])
        case bytes
        /// A tensor of a dtype this reader cannot represent (`complex32`, quantized, …), described.
        case unsupported(String)
    }

    struct Storage {
        let relativePath: String
        let offset: Int
        let length: Int
    }

    /// Items in file order.
    var items: [(name: String, item: Item)] = []
    /// (name, chunk offsets) → storage; bytes items have offsets nil.
    var storage: [StorageKey: Storage] = [:]
    var version: String?

    struct StorageKey: Hashable {
        let name: String
        let offsets: [Int]?
    }

    static let metadataModule = "torch.distributed.checkpoint.metadata"
    static let filesystemModule = "torch.distributed.checkpoint.filesystem"

    /// The globals this file may name beyond the machine's allowlist.
    static let allowedGlobals: Set<String> = [
        "\(metadataModule).Metadata", "\(metadataModule).TensorStorageMetadata", "\(metadataModule).BytesStorageMetadata",
        "\(metadataModule).TensorProperties", "\(metadataModule).ChunkStorageMetadata", "\(metadataModule).MetadataIndex",
        "\(metadataModule).StorageMeta", "\(metadataModule)._MEM_FORMAT_ENCODING",
        "\(filesystemModule)._StorageInfo",
        // StorageMeta.checkpoint_id is the save path, pickled as a pathlib path (pathlib._local from Python 3.13).
        "pathlib.PosixPath", "pathlib.PurePosixPath", "pathlib.WindowsPath", "pathlib.PureWindowsPath", "pathlib.Path",
        "pathlib._local.PosixPath", "pathlib._local.PurePosixPath", "pathlib._local.WindowsPath",
        "pathlib._local.PureWindowsPath", "pathlib._local.Path",
    ]

    /// Largest `.metadata` accepted.
    static let maxBytes = 256 << 20

    static func parse(_ bytes: [UInt8], file: String) throws -> DCPMetadata {
        let machine = PickleMachine(limits: .standard)
        defer { machine.dismantle() }
        let root = try CheckpointError.withContext(file: file) {
            try bytes.withUnsafeBytes { try machine.run($0).value }
        }
        if let foreign = machine.foreignGlobals.first(where: { !allowedGlobals.contains($0.global.qualifiedName) }) {
            throw CheckpointError("refusing .metadata: it names the global \(foreign.global.displayName), which is not one of the "
                                  + "torch.distributed.checkpoint metadata classes", file: file)
        }
        return try CheckpointError.withContext(file: file) { try interpret(root) }
    }

    // MARK: interpretation

    static func fail(_ message: String, key: String? = nil) -> CheckpointError {
        CheckpointError("malformed .metadata: " + message, key: key)
    }

    /// The attribute dict of an object of class `name` (in `module`).
    static func state(_ v: PickleValue, _ name: String, module: String = metadataModule, key: String? = nil) throws -> PickleDict? {
        guard case .object(let o) = v, let g = o.global, g.module == module, g.name == name else {
            throw fail("expected a \(name), found \(v.kindName)", key: key)
        }
        if o.state == nil { return nil }
        guard let d = o.stateDict else { throw fail("\(name) has state of kind \(o.state?.kindName ?? "none")", key: key) }
        return d
    }

    static func field(_ d: PickleDict?, _ name: String, of what: String, key: String? = nil) throws -> PickleValue {
        guard let v = d?.get(name) else { throw fail("\(what) has no '\(name)'", key: key) }
        return v
    }

    static func ints(_ v: PickleValue, _ what: String, key: String?) throws -> [Int] {
        guard let items = v.sequenceItems else { throw fail("\(what) is \(v.kindName), expected a tuple of ints", key: key) }
        guard items.count <= 64 else { throw fail("\(what) has \(items.count) dimensions (at most 64)", key: key) }
        return try items.map {
            guard let i = $0.intValue, let n = Int(exactly: i) else { throw fail("\(what) holds \($0.kindName), expected ints", key: key) }
            return n
        }
    }

    static func int(_ v: PickleValue, _ what: String, key: String?) throws -> Int {
        guard let i = v.intValue, let n = Int(exactly: i) else { throw fail("\(what) is \(v.kindName), expected an int", key: key) }
        return n
    }

    static func interpret(_ root: PickleValue) throws -> DCPMetadata {
        var md = DCPMetadata()
        let top = try state(root, "Metadata")
        if case .string(let v)? = top?.get("version") { md.version = v }
        if let v = md.version, !v.hasPrefix("1.") {
            throw CheckpointError("DCP metadata version \(v) is not supported (this reader knows version 1.x, as torch 2.15 writes)")
        }
        guard case .dict(let items) = try field(top, "state_dict_metadata", of: "Metadata") else {
            throw fail("state_dict_metadata is not a dict")
        }
        var seen = Set<String>()
        for (k, v) in zip(items.keys, items.values) {
            guard case .string(let name) = k else { throw fail("state_dict_metadata has a key of kind \(k.kindName)") }
            guard seen.insert(name).inserted else { throw fail("duplicate entry", key: name) }
            guard case .object(let o) = v, let g = o.global, g.module == metadataModule else {
                throw fail("entry is \(v.kindName), expected TensorStorageMetadata or BytesStorageMetadata", key: name)
            }
            switch g.name {
            case "BytesStorageMetadata":
                md.items.append((name, .bytes))
            case "TensorStorageMetadata":
                let d = try state(v, "TensorStorageMetadata", key: name)
                let (known, torchName) = try dtypeOf(try field(d, "properties", of: "TensorStorageMetadata", key: name), key: name)
                guard let dtype = known else {
                    md.items.append((name, .unsupported("a torch.\(torchName) tensor")))
                    continue
                }
                let size = try ints(try field(d, "size", of: "TensorStorageMetadata", key: name), "size", key: name)
                guard case .list(let list) = try field(d, "chunks", of: "TensorStorageMetadata", key: name) else {
                    throw fail("chunks is not a list", key: name)
                }
                var chunks: [(offsets: [Int], sizes: [Int])] = []
                for c in list.items {
                    let cd = try state(c, "ChunkStorageMetadata", key: name)
                    chunks.append((try ints(try field(cd, "offsets", of: "ChunkStorageMetadata", key: name), "chunk offsets", key: name),
                                   try ints(try field(cd, "sizes", of: "ChunkStorageMetadata", key: name), "chunk sizes", key: name)))
                }
                md.items.append((name, .tensor(dtype: dtype, size: size, chunks: chunks)))
            default:
                throw fail("entry is a \(g.name), expected TensorStorageMetadata or BytesStorageMetadata", key: name)
            }
        }
        guard case .dict(let storage) = try field(top, "storage_data", of: "Metadata") else {
            throw fail("storage_data is not a dict (this reader reads checkpoints written by FileSystemWriter)")
        }
        for (k, v) in zip(storage.keys, storage.values) {
            let kd = try state(k, "MetadataIndex")
            guard case .string(let name) = try field(kd, "fqn", of: "MetadataIndex") else { throw fail("MetadataIndex.fqn is not a string") }
            var offsets: [Int]?
            if let o = kd?.get("offset"), case .none = o {} else if let o = kd?.get("offset") {
                offsets = try ints(o, "MetadataIndex.offset", key: name)
            }
            let sd = try state(v, "_StorageInfo", module: filesystemModule, key: name)
            guard case .string(let rel) = try field(sd, "relative_path", of: "_StorageInfo", key: name) else {
                throw fail("_StorageInfo.relative_path is not a string", key: name)
            }
            if let t = sd?.get("transform_descriptors") {
                if case .none = t {} else if let ts = t.sequenceItems, ts.isEmpty {} else {
                    let names = (t.sequenceItems ?? []).map { $0.stringValue ?? $0.kindName }.joined(separator: ", ")
                    throw CheckpointError("payload is stored through stream transforms [\(names)] (compression or other extensions); "
                                          + "only untransformed payloads, torch's default, are supported", key: name)
                }
            }
            let info = Storage(relativePath: rel,
                               offset: try int(try field(sd, "offset", of: "_StorageInfo", key: name), "_StorageInfo.offset", key: name),
                               length: try int(try field(sd, "length", of: "_StorageInfo", key: name), "_StorageInfo.length", key: name))
            let key = StorageKey(name: name, offsets: offsets)
            guard md.storage[key] == nil else { throw fail("two storage entries for the same chunk at \(offsets ?? [])", key: name) }
            md.storage[key] = info
        }
        return md
    }

    /// The dtype of a `TensorProperties`: its pickled state is a tuple whose first item is the dtype (or, from
    /// older writers, a dict with a `dtype` field).
    /// The dtype (nil when torch has it but this reader cannot represent it) and its torch name.
    static func dtypeOf(_ v: PickleValue, key: String) throws -> (DType?, String) {
        guard case .object(let o) = v, let g = o.global, g.module == metadataModule, g.name == "TensorProperties" else {
            throw fail("properties is \(v.kindName), expected TensorProperties", key: key)
        }
        var d: PickleValue?
        if let items = o.state?.sequenceItems { d = items.first } else if let sd = o.stateDict { d = sd.get("dtype") }
        guard case .dtype(let name)? = d else { throw fail("TensorProperties has no dtype", key: key) }
        guard let known = TorchGlobals.torchDTypes[name] else { throw fail("unknown dtype torch.\(name)", key: key) }
        return (known, name)
    }
}
