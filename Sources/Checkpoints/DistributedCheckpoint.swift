import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// Reads a PyTorch Distributed Checkpoint (DCP) as written by `torch.distributed.checkpoint.save` with
/// `FileSystemWriter`: a directory holding `.metadata` (see `DCPMetadata`) and the `__<rank>_<n>.distcp` files
/// it points into. No torch is needed and nothing in the checkpoint is run.
///
/// - Tensors come out under DCP's flattened dotted names (`model.layer1.weight`, `optim.state.layer1.weight.exp_avg`),
///   in `.metadata` order. Each chunk's payload is a `torch.save` archive at (offset, length) of its `.distcp` file,
///   read by the zip reader confined to that byte range; payloads written with `SerializationFormat.SAFETENSORS`
///   (a safetensors file starting at the offset) are read too. Each chunk must hold exactly the dtype and shape
///   the metadata gives it, and the chunks must tile the tensor exactly (no gap, no overlap, nothing outside).
/// - Bytes items (non-tensor values: a step counter, hyper-parameters, `optim.param_groups.…`) become metadata:
///   a `torch.save` payload is unpickled by the safe machine (a list or dict is flattened below the item's name),
///   anything else is kept as raw bytes.
/// - A tensor is a `TensorEntry` with `chunks`: writers place each chunk into the output in turn; `load()`
///   assembles the whole tensor in memory.
package enum DistributedCheckpointReader {
    /// Largest raw (non-pickle) bytes item kept as metadata.
    static let maxRawBytesItem = 64 << 20
    /// Most chunks plus bytes items in one checkpoint.
    static let maxEntries = 1 << 22

    /// The checkpoint directory if `path` is a directory holding `.metadata`, or a file named `.metadata`.
    package static func directory(of path: String) -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        if isDir.boolValue {
            return FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(".metadata")) ? path : nil
        }
        guard (path as NSString).lastPathComponent == ".metadata" else { return nil }
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// Reads the checkpoint in `directory`; also returns the bytes of the files it references (for the output cap).
    package static func read(directory: String, path: String, options: ReadOptions = ReadOptions()) throws -> (StateDict, Int) {
        let metadataPath = (directory as NSString).appendingPathComponent(".metadata")
        let bytes = try readWhole(metadataPath, limit: DCPMetadata.maxBytes)
        let md = try DCPMetadata.parse(bytes, file: metadataPath)
        guard md.storage.count + md.items.count <= maxEntries else {
            throw CheckpointError("checkpoint lists \(md.storage.count) payloads (at most \(maxEntries))", file: metadataPath)
        }
        let files = DataFiles(directory: directory)
        var sd = StateDict(format: .dcp, file: path)
        var comparisons = ChunkLayout.maxComparisons   // shared by all tensors
        for (name, item) in md.items {
            switch item {
            case .bytes:
                guard let info = md.storage[.init(name: name, offsets: nil)] else {
                    throw CheckpointError("bytes item has no storage entry in .metadata", file: metadataPath, key: name)
                }
                let f = try files.file(info, key: name)
                try readBytesItem(name: name, info: info, file: f, files: files, into: &sd, options: options)
            case .unsupported(let what):
                sd.unsupported.append(UnsupportedTensor(name: name, what: what))
            case .tensor(let dtype, let size, let chunkBoxes):
                let entry = try CheckpointError.withContext(key: name) {
                    try tensorEntry(name: name, dtype: dtype, shape: size, boxes: chunkBoxes, md: md, files: files, metadataPath: metadataPath,
                                    options: options, comparisons: &comparisons)
                }
                sd.tensors.append(entry)
            }
        }
        // Unique, in order of appearance (a set, not `contains` per global: many items times many globals).
        var seenGlobals = Set<String>()
        sd.neutralisedGlobals = sd.neutralisedGlobals.filter { seenGlobals.insert($0).inserted }
        return (sd, files.totalBytes)
    }

    static func tensorEntry(name: String, dtype: DType, shape: [Int], boxes: [(offsets: [Int], sizes: [Int])], md: DCPMetadata,
                            files: DataFiles, metadataPath: String, options: ReadOptions, comparisons: inout Int) throws -> TensorEntry {
        guard shape.allSatisfy({ $0 >= 0 }), ShapeMath.byteCount(shape, dtype) != nil else {
            throw CheckpointError("tensor shape \(shape) is negative or overflows", file: metadataPath)
        }
        var infos: [DCPMetadata.Storage] = []
        for b in boxes {
            guard let info = md.storage[.init(name: name, offsets: b.offsets)] else {
                throw CheckpointError("chunk at offsets \(b.offsets) has no storage entry in .metadata", file: metadataPath)
            }
            infos.append(info)
        }
        try CheckpointError.withContext(file: (files.directory as NSString).appendingPathComponent(".metadata")) {
            try ChunkLayout.check(shape: shape, chunks: boxes, comparisons: &comparisons, where: { infos[$0].relativePath })
        }
        var chunks: [TensorChunk] = []
        chunks.reserveCapacity(boxes.count)
        for (b, info) in zip(boxes, infos) {
            let f = try files.file(info, key: name)
            let entry = try CheckpointError.withContext(file: f.path, offset: info.offset) {
                try chunkEntry(name: name, dtype: dtype, sizes: b.sizes, info: info, file: f, files: files, options: options)
            }
            chunks.append(TensorChunk(offsets: b.offsets, sizes: b.sizes, entry: entry))
        }
        let fileNames = Array(Set(infos.map(\.relativePath))).sorted()
        let location = "\(chunks.count) chunk\(chunks.count == 1 ? "" : "s") in \(fileNames.prefix(4).joined(separator: ", "))\(fileNames.count > 4 ? ", …" : "")"
        return TensorEntry(name: name, dtype: dtype, shape: shape, location: location, chunks: chunks)
    }

    /// The payload of one chunk: a `torch.save` archive holding one tensor, or a safetensors file naming it.
    static func chunkEntry(name: String, dtype: DType, sizes: [Int], info: DCPMetadata.Storage, file f: DataFile, files: DataFiles,
                           options: ReadOptions) throws -> TensorEntry {
        let range = info.offset..<(info.offset + info.length)
        // A safetensors payload runs past `length` (which counts only the chunk's bytes) to the end of the file.
        let head = try f.read(at: info.offset, count: min(9, f.size - info.offset))
        let entry: TensorEntry
        if let hit = f.chunkPayloads[range] {
            // A torch.save payload is parsed once: a crafted .metadata naming one payload for a million chunks costs
            // lookups, not parses. (safetensors payloads are looked up by name in their parsed header.)
            entry = hit
        } else if info.length >= 4, head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            try files.claim(info, in: f)   // a payload overlapping another one (not the same range) is refused
            let zip = try ZipArchive(path: f.path, range: range, verifyCRC: options.verifyCRC, sharing: f.source)
            let inner = try PyTorchZipReader.read(zip)
            if let u = inner.unsupported.first { throw CheckpointError("chunk payload holds \(u.what)") }
            guard inner.tensors.count == 1, let t = inner.tensors.first, t.name == "tensor" else {
                throw CheckpointError("chunk payload is a torch.save archive of \(inner.tensors.count) tensors, expected one bare tensor")
            }
            entry = t
            f.chunkPayloads[range] = t
        } else if head.count == 9, head[8] == UInt8(ascii: "{") {
            entry = try DCPSafetensorsPayload.entry(name: name, offset: info.offset, length: info.length, file: f)
        } else {
            throw CheckpointError("chunk payload of \(info.length) bytes is neither a torch.save archive nor safetensors")
        }
        guard entry.dtype == dtype, entry.shape == sizes else {
            throw CheckpointError("chunk holds \(entry.dtype.rawValue) \(entry.shape) but .metadata declares \(dtype.rawValue) \(sizes) for it")
        }
        return entry
    }

    static func readBytesItem(name: String, info: DCPMetadata.Storage, file f: DataFile, files: DataFiles, into sd: inout StateDict, options: ReadOptions) throws {
        let head = try CheckpointError.withContext(file: f.path, offset: info.offset, key: name) {
            try files.claim(info, in: f)
            return try f.read(at: info.offset, count: min(4, info.length))
        }
        guard head.starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            guard info.length <= maxRawBytesItem else {
                throw CheckpointError("raw bytes item of \(info.length) bytes exceeds the \(maxRawBytesItem)-byte limit for metadata",
                                      file: f.path, offset: info.offset, key: name)
            }
            let raw = try CheckpointError.withContext(file: f.path, offset: info.offset, key: name) { try f.read(at: info.offset, count: info.length) }
            sd.metadata.append(MetadataEntry(name: name, value: .bytes(raw)))
            return
        }
        let inner = try CheckpointError.withContext(file: f.path, offset: info.offset, key: name) {
            let zip = try ZipArchive(path: f.path, range: info.offset..<(info.offset + info.length), verifyCRC: options.verifyCRC, sharing: f.source)
            return try PyTorchZipReader.read(zip)
        }
        func full(_ n: String) -> String { n == "value" || n == "tensor" ? name : name + "." + n }
        for m in inner.metadata { sd.metadata.append(MetadataEntry(name: full(m.name), value: m.value)) }
        for var t in inner.tensors { t.name = full(t.name); sd.tensors.append(t) }
        for var u in inner.unsupported { u.name = full(u.name); sd.unsupported.append(u) }
        sd.neutralisedGlobals += inner.neutralisedGlobals   // made unique once, at the end of `read`
    }

    static func readWhole(_ path: String, limit: Int) throws -> [UInt8] {
        let (fd, size) = try InputFile.open(path)
        defer { close(fd) }
        guard size <= limit else { throw CheckpointError("file of \(size) bytes exceeds the \(limit)-byte limit", file: path) }
        return try DataFile.pread(fd, at: 0, count: size, path: path)
    }
}

/// One `.distcp` file, opened once and shared by the chunks that point into it.
final class DataFile: @unchecked Sendable {
    let path: String
    let size: Int
    let source: SourceFile
    let lock = NSLock()
    /// safetensors payloads parsed, by offset, with their tensors' positions by name (a chunk looks its name up).
    var parsedSafetensors: [Int: (sd: StateDict, byName: [String: Int])] = [:]
    /// Chunk payloads already read, by byte range (see `DistributedCheckpointReader.chunkEntry`).
    var chunkPayloads: [Range<Int>: TensorEntry] = [:]

    init(path: String) throws {
        self.path = path
        source = try SourceFile(path: path)
        size = source.size
    }

    func read(at offset: Int, count: Int) throws -> [UInt8] {
        let (end, o) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !o, end <= size else {
            throw CheckpointError("needs bytes \(offset)..<\(o ? Int.max : end) but the file holds \(size)", file: path, offset: offset)
        }
        return try source.withDescriptor { try Self.pread($0, at: offset, count: count, path: path) }
    }

    static func pread(_ fd: Int32, at offset: Int, count: Int, path: String) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            n = 0
            while n < count {
                let r = Glibc.pread(fd, buf.baseAddress! + n, count - n, off_t(offset + n))
                if r < 0 && errno == EINTR { continue }
                guard r > 0 else {
                    throw CheckpointError(r == 0 ? "file ends at byte \(offset + n), before \(offset + count)" : "cannot read: \(String(cString: strerror(errno)))",
                                          file: path, offset: offset + n)
                }
                n += r
            }
        }
    }
}

/// The `.distcp` files of one checkpoint, by relative path, each opened once.
final class DataFiles {
    let directory: String
    private var open: [String: DataFile] = [:]
    private(set) var totalBytes = 0
    /// Bytes of the payloads read so far (torch.save archives and bytes items; not safetensors chunks, whose
    /// `length` counts only their data).
    private(set) var payloadBytes = 0

    init(directory: String) { self.directory = directory }

    /// Counts a payload about to be parsed or kept. Payloads of a real checkpoint are disjoint byte ranges of its
    /// files, so together they fit in the files; more means payloads overlap (one archive read as many bytes items or
    /// overlapping chunk ranges, each unpickled, inflated or kept again) and is refused before the work and memory
    /// multiply. A chunk naming exactly a range already parsed reuses that parse and is not counted (what such
    /// sharing produces is bounded by the output cap).
    func claim(_ info: DCPMetadata.Storage, in f: DataFile) throws {
        let (sum, o) = payloadBytes.addingReportingOverflow(info.length)
        guard !o, sum <= totalBytes else {
            throw CheckpointError("payloads listed in .metadata add up to more than the \(totalBytes) bytes of the .distcp files read so far "
                                  + "(\(payloadBytes) before this one of \(info.length)): payloads overlap; refused",
                                  file: f.path, offset: info.offset)
        }
        payloadBytes = sum
    }

    /// The file `info` points into, after checking that its path stays inside the directory and that the payload's
    /// byte range lies inside the file.
    func file(_ info: DCPMetadata.Storage, key: String) throws -> DataFile {
        let rel = info.relativePath
        let parts = rel.split(separator: "/", omittingEmptySubsequences: false)
        guard !rel.isEmpty, !rel.hasPrefix("/"), !rel.contains("\0"), !rel.contains("\\"),
              parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw CheckpointError("relative_path '\(rel)' leaves the checkpoint directory or is not a plain relative path; refused",
                                  file: (directory as NSString).appendingPathComponent(".metadata"), key: key)
        }
        let f: DataFile
        if let hit = open[rel] {
            f = hit
        } else {
            let path = (directory as NSString).appendingPathComponent(rel)
            // Symbolic links: the file must resolve to a place inside the resolved directory.
            if let realDirectory = ShardedCheckpoint.realPath(directory), let real = ShardedCheckpoint.realPath(path),
               !ShardedCheckpoint.inside(real, realDirectory) {
                throw CheckpointError("relative_path '\(rel)' resolves (through a symbolic link) to \(real), outside the checkpoint directory; refused",
                                      file: (directory as NSString).appendingPathComponent(".metadata"), key: key)
            }
            f = try DataFile(path: path)
            open[rel] = f
            totalBytes = StateDict.saturatingAdd(totalBytes, f.size)
        }
        let (end, o) = info.offset.addingReportingOverflow(info.length)
        guard info.offset >= 0, info.length >= 0, !o, end <= f.size else {
            throw CheckpointError("payload at offset \(info.offset) with length \(info.length) runs past the end of the file (\(f.size) bytes)",
                                  file: f.path, offset: info.offset, key: key)
        }
        return f
    }
}

/// Chunks saved with `FileSystemWriter(serialization_format=SerializationFormat.SAFETENSORS)`: the `.distcp` file
/// ends with one safetensors file (starting at the chunks' common offset) that names each chunk by its fully
/// qualified name; `length` is the chunk's byte count.
enum DCPSafetensorsPayload {
    static func entry(name: String, offset: Int, length: Int, file f: DataFile) throws -> TensorEntry {
        let parsed = try f.safetensors(at: offset)
        guard let t = parsed.byName[name].map({ parsed.sd.tensors[$0] }) else {
            throw CheckpointError("the safetensors payload at byte \(offset) has no tensor named '\(name)'")
        }
        guard t.byteCount == length else {
            throw CheckpointError("the safetensors payload holds \(t.byteCount) bytes for the chunk but .metadata says \(length)")
        }
        return t
    }
}

extension DataFile {
    /// The safetensors file starting at `offset`, parsed once.
    /// A dictionary, not `StateDict[name]` (a linear scan): many chunks times many tensors would be quadratic.
    func safetensors(at offset: Int) throws -> (sd: StateDict, byName: [String: Int]) {
        if let hit = lock.withLock({ parsedSafetensors[offset] }) { return hit }
        let sd = try SafetensorsReader.read(path: path, base: offset)
        let parsed = (sd: sd, byName: Dictionary(sd.tensors.indices.map { (sd.tensors[$0].name, $0) }, uniquingKeysWith: { a, _ in a }))
        lock.withLock { parsedSafetensors[offset] = parsed }
        return parsed
    }
}
