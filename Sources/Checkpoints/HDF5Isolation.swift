#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Runs every libhdf5 call on an input file in a forked child process: first the structure walk (open, groups,
/// datatypes, dataspaces, attributes), then, in the same child, each dataset read that a tensor load asks for.
///
/// libhdf5 1.10 is not robust against corrupt files: a few flipped bytes in an object header, a global heap or a
/// chunk make it dereference wild pointers (seen in `H5A__attr_release_table`, `H5HG_read` and `H5Dread`), allocate
/// without bound or loop forever. In a child, such a crash or hang becomes one clear error instead of killing the
/// caller (and leaving its temporary output behind). Parent and child talk over a Unix socket pair in small
/// length-prefixed messages (`send` with `MSG_NOSIGNAL`, so a dead child is an error, never a SIGPIPE): the walk's
/// result (or its `CheckpointError`), then one request per load (the dataset's description) answered by the tensor's
/// bytes (or an error). The child serves until the parent closes its end (the last loader is gone), then leaves with
/// `_exit`. Each walk and each read runs under `alarm` (a hang ends it; a read gets a second more per 64 MiB) and an address-space limit (`RLIMIT_AS`: the
/// child's size at fork plus 512 MiB for the walk, plus 512 MiB and three times the dataset for a read). If the child
/// dies during a read, that load fails and the next one starts a fresh child.
///
/// The child closes every inherited descriptor but its socket (a sibling child holding this one's socket would keep
/// a crash from being seen), never takes `H5.lock` (its owning thread does not exist after `fork`); the parent holds
/// the lock across `fork` so that no other thread of ours is inside libhdf5 at that moment.
///
/// Cost (debug build, loaded 2-core machine, medians of three): converting 179 MB of big-endian float32 in 160
/// datasets (every tensor through a load) 0.87 s against 0.60 s in-process; the same data gzip-compressed 5.30 s
/// against 4.64 s (the chunk check inflates each chunk once more); the seven committed HDF5 fixtures 0.92 s against
/// 0.87 s in all. Contiguous little-endian datasets are copied file-to-file by the writers and never cross the socket.
///
/// Set `WEIGHTS_HDF5_IN_PROCESS=1` to run libhdf5 in-process instead (debugging; a corrupt file may then crash), and
/// `WEIGHTS_HDF5_TIME_LIMIT=S` to change the child's time limit per walk and per dataset.
enum H5Isolation {
    struct Walk {
        var datasets: [H5Dataset]
        var metadata: [MetadataEntry]
        var stringAttributes: [String: [String: [String]]]
    }

    /// Seconds the child may take for the walk, and for each dataset read, before it is stopped: 15, or
    /// `WEIGHTS_HDF5_TIME_LIMIT` (1…3600) when set. A real file of 10^5 objects walks in about a second; the limit
    /// only ends libhdf5's spins on corrupt files, which used to cost a full minute.
    static let timeLimit: UInt32 = {
        if let s = getenv("WEIGHTS_HDF5_TIME_LIMIT").map({ String(cString: $0) }), let n = UInt32(s), (1...3600).contains(n) { return n }
        return 15
    }()

    static var inProcess: Bool { getenv("WEIGHTS_HDF5_IN_PROCESS") != nil }

    /// Walks `path` in a child that then stays to serve loads (nil in-process).
    static func walk(path: String) throws -> (Walk, H5Server?) { try walk(source: H5Source(path: path, image: nil)) }

    /// Walks `source` (a file or an in-memory image) the same way.
    static func walk(source: H5Source) throws -> (Walk, H5Server?) {
        if inProcess {
            return (try H5.locked { try walkHere(source: source, underLock: true).0 }, nil)
        }
        let server = H5Server(source: source)
        let walk = try server.start(walk: true)
        return (walk!, server)
    }

    /// The walk itself, in whichever process runs it; also returns the open file for the reads that follow.
    static func walkHere(source: H5Source, underLock: Bool) throws -> (Walk, H5File) {
        let file = try CheckpointError.withContext(member: source.member) { try H5File(source: source, closeUnderLock: underLock) }
        var walker = H5Walker(file: file)
        try CheckpointError.withContext(file: source.path, member: source.member) {
            try walker.visitGroup(file.id, hdfPath: "/", depth: 0)
        }
        return (Walk(datasets: walker.datasets, metadata: walker.metadata, stringAttributes: walker.stringAttributes), file)
    }

    // MARK: messages

    /// Sends all of `bytes` (false if the other side is gone).
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let r = Glibc.send(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 20), Int32(MSG_NOSIGNAL))
            if r < 0 { if errno == EINTR { continue }; return false }
            done += r
        }
        return true
    }

    static func sendMessage(_ fd: Int32, _ payload: [UInt8]) -> Bool {
        var header = ByteWriter()
        header.int(payload.count)
        return header.bytes.withUnsafeBytes { send(fd, $0) } && payload.withUnsafeBytes { send(fd, $0) }
    }

    /// Fills `buffer` completely (false on end of stream or error).
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let r = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if r < 0 { if errno == EINTR { continue }; return false }
            if r == 0 { return false }
            done += r
        }
        return true
    }

    static func receiveCount(_ fd: Int32, limit: Int) -> Int? {
        var raw = [UInt8](repeating: 0, count: 8)
        guard raw.withUnsafeMutableBytes({ receive(fd, into: $0) }) else { return nil }
        var r = ByteReader(bytes: raw)
        guard let n = try? r.int(), n >= 0, n <= limit else { return nil }
        return n
    }

    static func receiveMessage(_ fd: Int32) -> [UInt8]? {
        guard let n = receiveCount(fd, limit: 1 << 34) else { return nil }
        var out = [UInt8](repeating: 0, count: n)
        guard n == 0 || out.withUnsafeMutableBytes({ receive(fd, into: $0) }) else { return nil }
        return out
    }

    /// Sets the child's address-space limit to its current size plus `extra` bytes (skipped under a sanitizer,
    /// whose shadow memory makes the size meaningless).
    static func limitMemory(extra: Int) {
        guard let statm = fopen("/proc/self/statm", "r") else { return }
        defer { fclose(statm) }
        var pages: UInt = 0
        guard withUnsafeMutablePointer(to: &pages, { withVaList([$0]) { vfscanf(statm, "%lu", $0) } }) == 1 else { return }
        let current = Int(clamping: pages).multipliedReportingOverflow(by: Int(sysconf(Int32(_SC_PAGESIZE))))
        guard !current.overflow, current.partialValue < 1 << 40 else { return }
        let (limit, o) = current.partialValue.addingReportingOverflow(extra)
        var rl = rlimit()
        guard !o, getrlimit(Int32(RLIMIT_AS.rawValue), &rl) == 0 else { return }
        rl.rlim_cur = min(rlim_t(limit), rl.rlim_max)
        setrlimit(Int32(RLIMIT_AS.rawValue), &rl)
    }

    // MARK: encoding

    struct ByteWriter {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func int(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func str(_ s: String) { int(s.utf8.count); bytes.append(contentsOf: s.utf8) }
        mutating func optStr(_ s: String?) { if let s { u8(1); str(s) } else { u8(0) } }
    }

    struct ByteReader {
        struct Truncated: Error {}
        let bytes: [UInt8]
        var i = 0
        mutating func u8() throws -> UInt8 {
            guard i < bytes.count else { throw Truncated() }
            defer { i += 1 }
            return bytes[i]
        }
        mutating func int() throws -> Int {
            guard i + 8 <= bytes.count else { throw Truncated() }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            i += 8
            return Int(Int64(bitPattern: v))
        }
        mutating func count() throws -> Int {
            let n = try int()
            guard n >= 0, n <= bytes.count - i else { throw Truncated() }
            return n
        }
        mutating func str() throws -> String {
            let n = try count()
            defer { i += n }
            return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
        }
        mutating func optStr() throws -> String? { try u8() == 0 ? nil : try str() }
    }

    static func encode(_ w: Walk, into out: inout ByteWriter) {
        out.int(w.datasets.count)
        for d in w.datasets { encode(d, into: &out) }
        out.int(w.metadata.count)
        for m in w.metadata {
            out.str(m.name)
            switch m.value {
            case .none: out.u8(0)
            case .bool(let b): out.u8(1); out.u8(b ? 1 : 0)
            case .int(let v): out.u8(2); out.int(Int(v))
            case .bigInt(let s): out.u8(3); out.str(s)
            case .float(let d): out.u8(4); out.int(Int(Int64(bitPattern: d.bitPattern)))
            case .string(let s): out.u8(5); out.str(s)
            case .bytes(let b): out.u8(6); out.int(b.count); out.bytes.append(contentsOf: b)
            }
        }
        out.int(w.stringAttributes.count)
        for (object, attrs) in w.stringAttributes {
            out.str(object)
            out.int(attrs.count)
            for (name, values) in attrs {
                out.str(name)
                out.int(values.count)
                for v in values { out.str(v) }
            }
        }
    }

    static func decodeWalk(_ r: inout ByteReader) throws -> Walk {
        var w = Walk(datasets: [], metadata: [], stringAttributes: [:])
        for _ in 0..<(try r.count()) { w.datasets.append(try decodeDataset(&r)) }
        for _ in 0..<(try r.count()) {
            let name = try r.str()
            let value: MetaValue
            switch try r.u8() {
            case 0: value = .none
            case 1: value = .bool(try r.u8() != 0)
            case 2: value = .int(Int64(try r.int()))
            case 3: value = .bigInt(try r.str())
            case 4: value = .float(Double(bitPattern: UInt64(bitPattern: Int64(try r.int()))))
            case 5: value = .string(try r.str())
            case 6:
                let n = try r.count()
                value = .bytes(Array(r.bytes[r.i..<(r.i + n)]))
                r.i += n
            default: throw ByteReader.Truncated()
            }
            w.metadata.append(MetadataEntry(name: name, value: value))
        }
        for _ in 0..<(try r.count()) {
            let object = try r.str()
            var attrs: [String: [String]] = [:]
            for _ in 0..<(try r.count()) {
                let name = try r.str()
                var values: [String] = []
                for _ in 0..<(try r.count()) { values.append(try r.str()) }
                attrs[name] = values
            }
            w.stringAttributes[object] = attrs
        }
        return w
    }

    static func encode(_ d: H5Dataset, into out: inout ByteWriter) {
        out.str(d.name); out.str(d.hdfPath); out.str(d.dtype.rawValue)
        out.int(d.shape.count); for x in d.shape { out.int(x) }
        out.str(d.plan.memory.rawValue); out.str(d.plan.note); out.int(d.byteCount); out.int(d.verbatimOffset)
    }

    static func decodeDataset(_ r: inout ByteReader) throws -> H5Dataset {
        let name = try r.str(), hdfPath = try r.str()
        guard let dtype = DType(rawValue: try r.str()) else { throw ByteReader.Truncated() }
        var shape: [Int] = []
        for _ in 0..<(try r.count()) { shape.append(try r.int()) }
        guard let memory = H5ReadPlan.Memory(rawValue: try r.str()) else { throw ByteReader.Truncated() }
        let note = try r.str()
        let byteCount = try r.int()
        var d = H5Dataset(name: name, hdfPath: hdfPath, dtype: dtype, shape: shape,
                          plan: H5ReadPlan(memory: memory, note: note), byteCount: byteCount)
        d.verbatimOffset = try r.int()
        return d
    }

    static func encode(_ e: CheckpointError, into out: inout ByteWriter) {
        out.str(e.message); out.optStr(e.file); out.optStr(e.member); out.optStr(e.key)
        if let o = e.offset { out.u8(1); out.int(o) } else { out.u8(0) }
    }

    static func decodeError(_ r: inout ByteReader) throws -> CheckpointError {
        let message = try r.str(), file = try r.optStr(), member = try r.optStr(), key = try r.optStr()
        let offset: Int? = try r.u8() == 0 ? nil : try r.int()
        return CheckpointError(message, file: file, member: member, offset: offset, key: key)
    }
}
