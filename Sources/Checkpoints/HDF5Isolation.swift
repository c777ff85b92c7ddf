#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Runs the HDF5 structure walk (open, groups, datatypes, dataspaces, attributes) in a forked child process.
///
/// libhdf5 1.10 is not robust against corrupt files: a few flipped bytes in an object header or a global heap make
/// it dereference wild pointers (seen in `H5A__attr_release_table` and `H5HG_read`) or loop forever. In a child,
/// such a crash or hang becomes one clear error instead of killing the caller. The child sends back the walk's
/// result (or its `CheckpointError`) through a pipe in a small length-prefixed encoding and exits with `_exit`.
/// A hang is ended by `alarm` in the child. The child never takes `H5.lock` (its owning thread does not exist after
/// `fork`); the parent holds the lock across `fork` so that no other thread of ours is inside libhdf5 at that moment.
///
/// Set `WEIGHTS_HDF5_IN_PROCESS=1` to walk in-process instead (debugging; a corrupt file may then crash), and
/// `WEIGHTS_HDF5_TIME_LIMIT=S` to change the child's time limit.
enum H5Isolation {
    struct Walk {
        var datasets: [H5Dataset]
        var metadata: [MetadataEntry]
        var stringAttributes: [String: [String: [String]]]
    }

    /// Seconds the child may take before it is stopped: 15, or `WEIGHTS_HDF5_TIME_LIMIT` (1…3600) when set. A real
    /// file of 10^5 objects walks in about a second; the limit only ends libhdf5's spins on corrupt files, which
    /// used to cost a full minute.
    static let timeLimit: UInt32 = {
        if let s = getenv("WEIGHTS_HDF5_TIME_LIMIT").map({ String(cString: $0) }), let n = UInt32(s), (1...3600).contains(n) { return n }
        return 15
    }()

    static func walk(path: String) throws -> Walk {
        if getenv("WEIGHTS_HDF5_IN_PROCESS") != nil {
            return try H5.locked { try walkHere(path: path, underLock: true) }
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            return try H5.locked { try walkHere(path: path, underLock: true) }
        }
        H5.lock.lock()
        let pid = fork()
        if pid != 0 { H5.lock.unlock() } // the child never touches the lock again
        if pid < 0 {
            close(fds[0]); close(fds[1])
            return try H5.locked { try walkHere(path: path, underLock: true) }
        }
        if pid == 0 {
            // Child: walk, send, leave without running atexit handlers.
            close(fds[0])
            // A crash here must die quietly: no crash backtrace on the user's terminal.
            for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT] { signal(sig, SIG_DFL) }
            let devnull = open("/dev/null", O_WRONLY)
            if devnull >= 0 { dup2(devnull, 2); close(devnull) }
            alarm(timeLimit)
            var out = ByteWriter()
            do {
                let w = try walkHere(path: path, underLock: false)
                out.u8(0)
                encode(w, into: &out)
            } catch let e as CheckpointError {
                out.u8(1)
                encode(e, into: &out)
            } catch {
                out.u8(1)
                encode(CheckpointError("\(error)", file: path), into: &out)
            }
            out.bytes.withUnsafeBytes { b in
                var done = 0
                while done < b.count {
                    let r = write(fds[1], b.baseAddress! + done, b.count - done)
                    if r < 0 { if errno == EINTR { continue }; break }
                    done += r
                }
            }
            close(fds[1])
            _exit(0)
        }
        // Parent: read until the child closes the pipe, then reap it.
        close(fds[1])
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let r = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { break }
            received.append(contentsOf: chunk[0..<r])
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        if signal != 0 && signal != 0x7F {
            let what = signal == SIGALRM
                ? "did not finish within \(timeLimit) s (WEIGHTS_HDF5_TIME_LIMIT sets the limit)" : "crashed (signal \(signal))"
            throw CheckpointError("corrupt HDF5 file: libhdf5 \(what) while reading its structure", file: path)
        }
        var reader = ByteReader(bytes: received)
        do {
            switch try reader.u8() {
            case 0: return try decodeWalk(&reader)
            default: throw try decodeError(&reader)
            }
        } catch let e as ByteReader.Truncated {
            _ = e
            throw CheckpointError("corrupt HDF5 file: the reading process ended early (exit status \((status >> 8) & 0xFF))", file: path)
        }
    }

    /// The walk itself, in whichever process runs it.
    static func walkHere(path: String, underLock: Bool) throws -> Walk {
        let file = try H5File(path: path, closeUnderLock: underLock)
        var walker = H5Walker(file: file)
        try CheckpointError.withContext(file: path) {
            try walker.visitGroup(file.id, hdfPath: "/", depth: 0)
        }
        return Walk(datasets: walker.datasets, metadata: walker.metadata, stringAttributes: walker.stringAttributes)
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
        for d in w.datasets {
            out.str(d.name); out.str(d.hdfPath); out.str(d.dtype.rawValue)
            out.int(d.shape.count); for x in d.shape { out.int(x) }
            out.str(d.plan.memory.rawValue); out.str(d.plan.note); out.int(d.byteCount); out.int(d.verbatimOffset)
        }
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
        for _ in 0..<(try r.count()) {
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
            w.datasets.append(d)
        }
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
