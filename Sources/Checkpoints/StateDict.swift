import TensorCore

/// A non-tensor leaf of a checkpoint (an epoch number, an architecture name, a hyper-parameter).
public enum MetaValue: Sendable, Equatable, CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer too large for Int64, in decimal.
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])

    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let s): return s
        case .float(let d): return String(d)
        case .string(let s): return s
        case .bytes(let b): return "<\(b.count) bytes>"
        }
    }
}

public struct MetadataEntry: Sendable, Equatable {
    public var name: String
    public var value: MetaValue
    public init(name: String, value: MetaValue) { self.name = name; self.value = value }
}

/// One tensor of a checkpoint: what it is (name, dtype, shape), where it lives, and how to read it.
/// Reading is lazy so that inspection touches no tensor data and conversion streams one tensor at a time.
public struct TensorEntry: Sendable {
    public var name: String
    public let dtype: DType
    public let shape: [Int]
    /// Human-readable location: zip member and offset, HDF5 path, or byte offset in the file.
    public let location: String
    /// Set when the tensor's bytes lie verbatim (contiguous, little-endian) in its file, so writers can copy
    /// them file-to-file. `load()` always works, with or without it.
    package let span: FileSpan?
    /// Set when the tensor is stored as separate boxes (a Distributed Checkpoint's chunks) that tile it exactly,
    /// so writers can place them into the output one at a time. `load()` assembles them in memory.
    package let chunks: [TensorChunk]?
    private let loader: @Sendable () throws -> Tensor

    package init(name: String, dtype: DType, shape: [Int], location: String, span: FileSpan? = nil,
                loader: @escaping @Sendable () throws -> Tensor) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.location = location
        self.span = span.flatMap { ShapeMath.byteCount(shape, dtype) == $0.count ? $0 : nil }
        self.chunks = nil
        self.loader = loader
    }

    /// A tensor stored as `chunks` (checked by the caller to tile `shape` exactly, each of dtype `dtype`).
    package init(name: String, dtype: DType, shape: [Int], location: String, chunks: [TensorChunk]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.location = location
        self.span = nil
        self.chunks = chunks
        self.loader = { try ChunkPlacement.assemble(dtype: dtype, shape: shape, chunks: chunks) }
    }

    /// An entry for a tensor already in memory.
    public init(name: String, tensor: Tensor, location: String = "memory") {
        self.init(name: name, dtype: tensor.dtype, shape: tensor.shape, location: location, loader: { tensor })
    }

    public var elementCount: Int { ShapeMath.elementCount(shape) ?? 0 }
    public var byteCount: Int { ShapeMath.byteCount(shape, dtype) ?? 0 }

    /// Reads the tensor's values (C-contiguous, little-endian). Errors carry the entry's name as key.
    public func load() throws -> Tensor {
        let faults = MappingGuard.faultCount
        // A mapped input shrank meanwhile: the bytes may be zeros, so that is the error, whatever else failed.
        let t: Tensor
        do { t = try CheckpointError.withContext(key: name) { try loader() } } catch {
            try CheckpointError.withContext(key: name) { try MappingGuard.check(since: faults) }
            throw error
        }
        try CheckpointError.withContext(key: name) { try MappingGuard.check(since: faults) }
        return t
    }
}

/// A tensor found in a checkpoint that this reader cannot represent (a quantized, sparse or nested tensor, a
/// complex32 one, …). It is listed rather than failing the whole file; `convert` refuses it by name unless told to
/// skip such tensors.
public struct UnsupportedTensor: Sendable, Equatable {
    public var name: String
    /// What it is: "a quantized tensor (rebuilt by torch._utils._rebuild_qtensor)", "a torch.complex32 tensor".
    public var what: String
    public init(name: String, what: String) { self.name = name; self.what = what }

    /// Thrown by tensor factories for a tensor of a kind they cannot represent; the flattener lists it.
    struct Kind: Error { let what: String }
}

/// The supported on-disk formats.
public enum CheckpointFormat: String, Sendable, CaseIterable {
    case pytorchZip = "pytorch-zip"
    case pytorchLegacy = "pytorch-legacy"
    case safetensors
    case hdf5
    case npy
    case npz
    /// Keras 3 `.keras` archive (zip of config.json, metadata.json, model.weights.h5).
    case keras
    /// A PyTorch Distributed Checkpoint directory (`.metadata` + `__<rank>_<n>.distcp` files).
    case dcp = "pytorch-dcp"
}

/// An ordered map of dotted names to tensors, plus the non-tensor leaves of the checkpoint as metadata.
public struct StateDict: Sendable {
    public var format: CheckpointFormat
    /// The file it came from (as given by the user), or "" for in-memory dicts.
    public var file: String
    public var tensors: [TensorEntry]
    public var metadata: [MetadataEntry]
    /// Globals outside the pickle allowlist that the checkpoint's pickle named (`module.name`, deduplicated, in
    /// first-seen order). Each became an inert placeholder — nothing was imported or run — but their presence
    /// beside real tensors is worth telling the user (a payload riding along); `--strict` refuses such files.
    public var neutralisedGlobals: [String] = []
    /// Tensors of kinds this reader cannot represent, listed by name (they are not in `tensors`).
    public var unsupported: [UnsupportedTensor] = []
    /// For a sharded checkpoint (`file` is then its index): the shard files read, in the order their tensors
    /// come (`format` is the first shard's). Empty for a single file.
    public var shards: [String] = []

    public init(format: CheckpointFormat, file: String, tensors: [TensorEntry] = [], metadata: [MetadataEntry] = []) {
        self.format = format
        self.file = file
        self.tensors = tensors
        self.metadata = metadata
    }

    public var names: [String] { tensors.map(\.name) }

    public subscript(name: String) -> TensorEntry? { tensors.first { $0.name == name } }

    /// Totals saturate at Int.max instead of trapping (shapes come from the file).
    public var totalElements: Int { tensors.reduce(0) { Self.saturatingAdd($0, $1.elementCount) } }
    public var totalBytes: Int { tensors.reduce(0) { Self.saturatingAdd($0, $1.byteCount) } }

    static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? Int.max : s
    }

    /// The part of the dict below `path` (a dotted prefix such as `state_dict` or `model.backbone`), with the
    /// prefix removed. Throws if nothing lives under it.
    public func subtree(_ path: String) throws -> StateDict {
        let prefix = path.hasSuffix(".") ? path : path + "."
        var out = StateDict(format: format, file: file)
        out.neutralisedGlobals = neutralisedGlobals
        out.shards = shards
        for var t in tensors where t.name.hasPrefix(prefix) {
            t.name = String(t.name.dropFirst(prefix.count))
            out.tensors.append(t)
        }
        for m in metadata where m.name.hasPrefix(prefix) {
            out.metadata.append(MetadataEntry(name: String(m.name.dropFirst(prefix.count)), value: m.value))
        }
        for var u in unsupported where u.name.hasPrefix(prefix) {
            u.name = String(u.name.dropFirst(prefix.count))
            out.unsupported.append(u)
        }
        if out.tensors.isEmpty && out.unsupported.isEmpty {
            let roots = Array(Set(tensors.map { $0.name.split(separator: ".").first.map(String.init) ?? $0.name })).sorted()
            let shown = roots.prefix(12).joined(separator: ", ")
            throw CheckpointError("no tensors under key '\(path)'; top-level keys are: \(shown)\(roots.count > 12 ? ", …" : "")",
                                  file: file, key: path)
        }
        return out
    }
}
