import CZip
import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes a state dict as a PyTorch Distributed Checkpoint, laid out as torch 2.15's `FileSystemWriter` lays it
/// out, so that `torch.distributed.checkpoint.load` (on any number of ranks) and `dcp_to_torch_save` read it:
///
/// - `__<r>_0.distcp` for each rank r: every tensor with at least one row is cut into row blocks over the ranks
///   as DTensor `Shard(0)` cuts it (⌈rows / ranks⌉ rows each; a rank left without rows gets no chunk); scalars
///   and empty tensors go to rank 0 whole. Each chunk is a `torch.save` archive of that block.
/// - Metadata entries become bytes items: the value `torch.save`d (int, float, str, bool, None, bytes), in rank 0's file.
/// - `.metadata`: the pickled `Metadata` (`state_dict_metadata`, `storage_data`, `planner_data` mapping each name
///   to itself, `version` 1.0.0).
///
/// The directory is written beside its destination under a temporary name and renamed into place at the end, so
/// nothing appears at the destination unless every file was written. Memory: one tensor at a time.
public enum DistributedCheckpointWriter {
    public static let maxRanks = 4096

    /// Writes `sd` (floating tensors cast to `dtype` when given) to the directory `destination`, which must not exist.
    /// `extraMetadata` (provenance: `source_file`, …) is written as string items after the state dict's own
    /// metadata, for names it does not already use.
    public static func write(_ sd: StateDict, to destination: String, ranks: Int, dtype: DType?,
                             extraMetadata: [String: String] = [:]) throws {
        guard ranks >= 1, ranks <= maxRanks else {
            throw CheckpointError("--ranks must be between 1 and \(maxRanks), not \(ranks)", file: destination)
        }
        var st = stat()
        guard lstat(destination, &st) != 0 else {
            throw CheckpointError("already exists; a Distributed Checkpoint is written to a new directory", file: destination)
        }
        let (items, _) = try WriterPlan.make(sd, cast: dtype, file: destination, format: "a Distributed Checkpoint",
                                             holds: { storageName($0) != nil }, skipUnsupported: false)
        let parent = (destination as NSString).deletingLastPathComponent
        let base = (destination as NSString).lastPathComponent
        let tmp = (parent.isEmpty ? "" : parent + "/") + AtomicOutput.temporaryName(for: base)
        guard mkdir(tmp, 0o755) == 0 else {
            throw CheckpointError("cannot create \(tmp): \(String(cString: strerror(errno)))", file: destination)
        }
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: tmp) } }
        var files: [FileHandleWriter] = []
        for r in 0..<ranks { files.append(try FileHandleWriter(path: "\(tmp)/__\(r)_0.distcp", destination: destination)) }

        var md = PickleEmitter()
        var entries: [(name: String, write: (inout PickleEmitter) -> Void)] = []
        var storage: [(name: String, offsets: [Int]?, file: String, offset: Int, length: Int)] = []

        for item in items {
            let name = item.entry.name
            let t = try WriterPlan.load(item, file: destination)
            let shape = t.shape, es = t.dtype.byteSize
            var chunks: [(offsets: [Int], sizes: [Int], rank: Int)] = []
            if shape.isEmpty || shape[0] == 0 || t.byteCount == 0 {
                chunks.append((Array(repeating: 0, count: shape.count), shape, 0))
            } else {
                let rows = shape[0], per = (rows + ranks - 1) / ranks
                for r in 0..<ranks where r * per < rows {
                    var sizes = shape
                    sizes[0] = min(per, rows - r * per)
                    var offsets = Array(repeating: 0, count: shape.count)
                    offsets[0] = r * per
                    chunks.append((offsets, sizes, r))
                }
            }
            let rowBytes = shape.isEmpty ? es : shape.dropFirst().reduce(es, *)
            for c in chunks {
                let start = shape.isEmpty ? 0 : c.offsets[0] * rowBytes
                let count = (ShapeMath.elementCount(c.sizes) ?? 0) * es
                let payload = try t.bytes.withUnsafeBytes { b in
                    try TorchSaveArchive.tensor(UnsafeRawBufferPointer(rebasing: b[start..<(start + count)]), dtype: t.dtype, shape: c.sizes)
                }
                let f = files[c.rank]
                storage.append((name, c.offsets, "__\(c.rank)_0.distcp", f.offset, payload.count))
                try f.write(payload)
            }
            let (dtypeName, chunkList) = (t.dtype.rawValue, chunks)
            entries.append((name, { p in
                p.object("torch.distributed.checkpoint.metadata", "TensorStorageMetadata") { p in
                    p.dict { p in
                        p.string("properties")
                        p.object("torch.distributed.checkpoint.metadata", "TensorProperties") { p in
                            p.tuple { p in
                                p.global("torch", dtypeName)
                                p.call("torch.serialization", "_get_layout") { p in p.string("torch.strided") }
                                p.bool(false)
                                p.call("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING") { p in p.int(0) }
                                p.bool(false)
                                p.none()
                            }
                        }
                        p.string("size"); p.size(shape)
                        p.string("chunks")
                        p.list { p in
                            for c in chunkList {
                                p.object("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata") { p in
                                    p.dict { p in p.string("offsets"); p.size(c.offsets); p.string("sizes"); p.size(c.sizes) }
                                }
                            }
                        }
                    }
                }
            }))
        }
        let own = Set(sd.metadata.map(\.name))
        let extra = extraMetadata.keys.sorted().filter { !own.contains($0) }.map { MetadataEntry(name: $0, value: .string(extraMetadata[$0] ?? "")) }
        for m in sd.metadata + extra {
            guard let payload = try TorchSaveArchive.value(m.value) else { continue }
            let f = files[0]
            storage.append((m.name, nil, "__0_0.distcp", f.offset, payload.count))
            try f.write(payload)
            entries.append((m.name, { p in p.object("torch.distributed.checkpoint.metadata", "BytesStorageMetadata") }))
        }
        for f in files { try f.close() }

        md.proto()
        md.object("torch.distributed.checkpoint.metadata", "Metadata") { p in
            p.dict { p in
                p.string("state_dict_metadata")
                p.dict { p in for e in entries { p.string(e.name); e.write(&p) } }
                p.string("planner_data")
                p.dict { p in for e in entries { p.string(e.name); p.tuple { p in p.string(e.name) } } }
                p.string("storage_data")
                p.dict { p in
                    for s in storage {
                        p.object("torch.distributed.checkpoint.metadata", "MetadataIndex") { p in
                            p.dict { p in
                                p.string("fqn"); p.string(s.name)
                                p.string("offset"); if let o = s.offsets { p.size(o) } else { p.none() }
                                p.string("index"); p.none()
                            }
                        }
                        p.object("torch.distributed.checkpoint.filesystem", "_StorageInfo") { p in
                            p.dict { p in
                                p.string("relative_path"); p.string(s.file)
                                p.string("offset"); p.int(s.offset)
                                p.string("length"); p.int(s.length)
                            }
                        }
                    }
                }
                p.string("storage_meta"); p.none()
                p.string("version"); p.string("1.0.0")
            }
        }
        md.stop()
        let meta = try FileHandleWriter(path: "\(tmp)/.metadata", destination: destination)
        try meta.write(md.bytes)
        try meta.close()
        guard lstat(destination, &st) != 0 else {
            throw CheckpointError("already exists; a Distributed Checkpoint is written to a new directory", file: destination)
        }
        guard rename(tmp, destination) == 0 else {
            throw CheckpointError("cannot move the checkpoint into place: \(String(cString: strerror(errno)))", file: destination)
        }
        done = true
    }

    /// The torch storage class of `dtype`, when torch's classic typed storages have one.
    static func storageName(_ dtype: DType) -> String? {
        TorchGlobals.storageTypes.first { $0.value.dtype == dtype && $0.key != "UntypedStorage" }?.key
    }
}

/// A file written sequentially with plain `write`, tracking its size.
final class FileHandleWriter {
    let path: String
    let destination: String
    private var fd: Int32
    private(set) var offset = 0

    init(path: String, destination: String) throws {
        self.path = path
        self.destination = destination
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError("cannot create \(path): \(String(cString: strerror(errno)))", file: destination) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let r = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                if r < 0 && errno == EINTR { continue }
                guard r > 0 else { throw CheckpointError("write failed: \(String(cString: strerror(errno)))", file: path) }
                done += r
            }
        }
        offset += bytes.count
    }

    func close() throws {
        guard Glibc.close(fd) == 0 else { throw CheckpointError("close failed: \(String(cString: strerror(errno)))", file: path) }
        fd = -1
    }
}

/// `torch.save` archives built in memory (zip, stored members, data aligned to 64 bytes as torch aligns them).
enum TorchSaveArchive {
    /// `torch.save(tensor)` of a C-contiguous tensor whose bytes are `data`.
    static func tensor(_ data: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) throws -> [UInt8] {
        guard let storage = DistributedCheckpointWriter.storageName(dtype) else {
            throw CheckpointError("torch.save has no classic storage type for \(dtype.rawValue)")
        }
        guard data.count < (1 << 32) - (1 << 20) else {
            throw CheckpointError("a chunk of \(data.count) bytes needs zip64, which this writer does not write; use more --ranks")
        }
        var strides = [Int](repeating: 1, count: shape.count)
        if shape.count >= 2 { for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * max(shape[d + 1], 1) } }
        var p = PickleEmitter()
        p.proto()
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.tuple { p in
            p.tuple { p in p.string("storage"); p.global("torch", storage); p.string("0"); p.string("cpu"); p.int(ShapeMath.elementCount(shape) ?? 0) }
            p.raw([0x51])   // BINPERSID
            p.int(0)
            p.tuple { p in for d in shape { p.int(d) } }
            p.tuple { p in for s in strides { p.int(s) } }
            p.bool(false)
            p.call("collections", "OrderedDict") { _ in }
        }
        p.raw([0x52])
        p.stop()
        return zip([("archive/data.pkl", p.bytes), ("archive/byteorder", Array("little".utf8)),
                    ("archive/data/0", Array(data)), ("archive/version", Array("3\n".utf8))])
    }

    /// `torch.save(value)` of a metadata value, or nil for a value with no Python form here.
    static func value(_ v: MetaValue) throws -> [UInt8]? {
        var p = PickleEmitter()
        p.proto()
        switch v {
        case .none: p.none()
        case .bool(let b): p.bool(b)
        case .int(let i): p.int(Int(i))
        case .bigInt(let s): p.bigInt(s)
        case .float(let d): p.float(d)
        case .string(let s): p.string(s)
        case .bytes(let b): p.binBytes(b)
        }
        p.stop()
        return zip([("archive/data.pkl", p.bytes), ("archive/byteorder", Array("little".utf8)), ("archive/version", Array("3\n".utf8))])
    }

    /// A zip of stored members; each member's data starts on a 64-byte boundary (padding in the local extra field).
    static func zip(_ members: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: Int, _ a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        for (name, data) in members {
            let n = Array(name.utf8)
            let crc = Int(data.withUnsafeBytes { b in
                UInt32(truncatingIfNeeded: CZip.crc32(CZip.crc32(0, nil, 0), b.baseAddress?.assumingMemoryBound(to: UInt8.self), uInt(b.count)))
            })
            let headerOffset = out.count
            var extra: [UInt8] = []
            let unpadded = headerOffset + 30 + n.count
            if unpadded % 64 != 0 {
                let pad = (64 - (unpadded + 4) % 64) % 64
                u16(0x4246, &extra); u16(pad, &extra); extra += [UInt8](repeating: 0x5A, count: pad)
            }
            u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(33, &out)
            u32(crc, &out); u32(data.count, &out); u32(data.count, &out); u16(n.count, &out); u16(extra.count, &out)
            out += n; out += extra; out += data
            u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central)
            u16(0, &central); u16(33, &central); u32(crc, &central); u32(data.count, &central); u32(data.count, &central)
            u16(n.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central); u32(0, &central)
            u32(headerOffset, &central)
            central += n
        }
        let cdOffset = out.count
        out += central
        u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out); u16(members.count, &out); u16(members.count, &out)
        u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
        return out
    }
}
