import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An input file shared by the tensor entries that point into it, read through a descriptor from a bounded pool.
///
/// A sharded set or a DCP checkpoint can have thousands of files, more than the soft RLIMIT_NOFILE (often 1024)
/// lets a process hold open, so a `SourceFile` does not keep its descriptor: `init` opens the file once (checking
/// it is a regular file and noting its device, inode and size), and `withDescriptor` reopens it on demand. At most
/// `SourceFilePool.limit` descriptors stay open at once (the least recently used idle one is closed first); a
/// reopened path must still be the same file (device and inode), else the read is refused. When the process is
/// out of descriptors anyway (EMFILE), the idle ones are closed and the open retried once, then the error names
/// the file and the limit.
package final class SourceFile: @unchecked Sendable {
    public let path: String
    /// The size when first opened.
    public let size: Int
    let device: UInt64
    let inode: UInt64

    public init(path: String) throws {
        self.path = path
        let (fd, size) = try SourceFilePool.openFile(path)
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw CheckpointError("cannot stat: \(String(cString: strerror(e)))", file: path)
        }
        self.size = size
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        SourceFilePool.adopt(ObjectIdentifier(self), fd: fd)
    }

    deinit { SourceFilePool.forget(ObjectIdentifier(self)) }

    /// Runs `body` with an open read-only descriptor of the file (valid only inside `body`).
    public func withDescriptor<T>(_ body: (Int32) throws -> T) throws -> T {
        let fd = try SourceFilePool.acquire(self)
        defer { SourceFilePool.release(ObjectIdentifier(self)) }
        return try body(fd)
    }
}

/// The open descriptors of all `SourceFile`s (by the file's identity; a file's deinit removes its entry), with
/// their users and an LRU clock.
package enum SourceFilePool {
    struct Entry {
        var fd: Int32
        var users: Int
        var lastUse: UInt64
    }
    struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var clock: UInt64 = 0
    }
    static let state = Mutex(State())

    /// Descriptors kept open at once: a quarter of the soft RLIMIT_NOFILE when first used, between 8 and 512.
    package static let limit: Int = {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 64 }
        return Int(clamping: min(UInt64(512), max(UInt64(8), UInt64(rl.rlim_cur) / 4)))
    }()

    /// Raises the soft RLIMIT_NOFILE to the hard limit (the CLI does this at start, as is common practice: the
    /// default soft limit of 1024 is low for checkpoints of thousands of files). Returns the new soft limit.
    @discardableResult
    package static func raiseOpenFileLimit() -> UInt64? {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return nil }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(rl.rlim_cur)
    }

    /// Descriptors open now (tests).
    package static var openCount: Int { state.withLock { $0.open.count } }

    /// `InputFile.open`, closing the idle pooled descriptors and retrying once when the process is out of them.
    static func openFile(_ path: String) throws -> (fd: Int32, size: Int) {
        var e: Int32 = 0
        do {
            return try InputFile.open(path, openErrno: &e)
        } catch {
            guard e == EMFILE || e == ENFILE else { throw error }
        }
        closeIdle(keep: 0)
        e = 0
        do {
            return try InputFile.open(path, openErrno: &e)
        } catch {
            guard e == EMFILE || e == ENFILE else { throw error }
            var rl = rlimit()
            let soft = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 ? "\(rl.rlim_cur)" : "unknown"
            throw CheckpointError("cannot open: too many open files (\(String(cString: strerror(e))); the soft limit RLIMIT_NOFILE is \(soft): raise it with `ulimit -n`)",
                                  file: path)
        }
    }

    static func adopt(_ id: ObjectIdentifier, fd: Int32) {
        let excess: [Int32] = state.withLock { s in
            s.clock += 1
            s.open[id] = Entry(fd: fd, users: 0, lastUse: s.clock)
            return evict(&s, keep: limit)
        }
        for fd in excess { close(fd) }
    }

    static func forget(_ id: ObjectIdentifier) {
        if let fd = state.withLock({ $0.open.removeValue(forKey: id)?.fd }) { close(fd) }
    }

    static func acquire(_ file: SourceFile) throws -> Int32 {
        let id = ObjectIdentifier(file)
        let pooled: Int32? = state.withLock { s in
            guard var e = s.open[id] else { return nil }
            s.clock += 1
            e.lastUse = s.clock
            e.users += 1
            s.open[id] = e
            return e.fd
        }
        if let pooled { return pooled }
        let (fd, _) = try openFile(file.path)
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_dev) == file.device, UInt64(st.st_ino) == file.inode else {
            close(fd)
            throw CheckpointError("is no longer the file that was first opened (replaced since); not reading it", file: file.path)
        }
        let (inUse, excess): (Int32, [Int32]) = state.withLock { s in
            s.clock += 1
            var extra: [Int32] = []
            if var e = s.open[id] {  // another thread reopened it meanwhile
                extra.append(fd)
                e.users += 1
                e.lastUse = s.clock
                s.open[id] = e
            } else {
                s.open[id] = Entry(fd: fd, users: 1, lastUse: s.clock)
            }
            return (s.open[id]!.fd, extra + evict(&s, keep: limit))
        }
        for fd in excess { close(fd) }
        return inUse
    }

    static func release(_ id: ObjectIdentifier) {
        state.withLock { s in s.open[id]?.users -= 1 }
    }

    /// Closes idle descriptors until at most `keep` are open.
    static func closeIdle(keep: Int) {
        let excess = state.withLock { evict(&$0, keep: keep) }
        for fd in excess { close(fd) }
    }

    /// Takes idle descriptors out of the pool, least recently used first, until at most `keep` remain (files in
    /// use stay); returns them for closing outside the lock.
    private static func evict(_ s: inout State, keep: Int) -> [Int32] {
        guard s.open.count > keep else { return [] }
        let idle = s.open.filter { $0.value.users == 0 }.sorted { $0.value.lastUse < $1.value.lastUse }
        var out: [Int32] = []
        for (id, e) in idle where s.open.count > keep {
            out.append(e.fd)
            s.open[id] = nil
        }
        return out
    }
}

/// Where a tensor's exact bytes — C-contiguous, little-endian, nothing to convert — lie verbatim in its file.
/// Writers copy such spans file-to-file (`copy_file_range`) without passing them through user memory.
package struct FileSpan: Sendable {
    public let file: SourceFile
    public let offset: Int
    public let count: Int

    public init(file: SourceFile, offset: Int, count: Int) {
        self.file = file
        self.offset = offset
        self.count = count
    }
}

/// File-to-file copies: `copy_file_range` where the kernel has it (looked up at run time, since Swift's Glibc
/// module does not declare it), else `pread` + `write` through a bounded buffer.
enum FileCopy {
    typealias CopyFileRange = @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int

    static let copyFileRange: CopyFileRange? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
        return unsafeBitCast(sym, to: CopyFileRange.self)
    }()

    /// Appends `span` to `out` at its current position, or writes it at byte `position` of `out` (leaving the
    /// file position alone). Returns the bytes copied (== span.count) or throws.
    static func append(_ span: FileSpan, to out: Int32, destination: String, at position: Int? = nil) throws {
        try span.file.withDescriptor { input in try append(span, from: input, to: out, destination: destination, at: position) }
    }

    private static func append(_ span: FileSpan, from input: Int32, to out: Int32, destination: String, at position: Int?) throws {
        var inOffset = Int64(span.offset)
        var outOffset = Int64(position ?? 0)
        var left = span.count
        if let cfr = copyFileRange {
            while left > 0 {
                let r = position == nil ? cfr(input, &inOffset, out, nil, min(left, 1 << 30), 0)
                                        : cfr(input, &inOffset, out, &outOffset, min(left, 1 << 30), 0)
                if r > 0 { left -= r; continue }
                if r == 0 {
                    throw CheckpointError("file ends before byte \(inOffset)", file: span.file.path, offset: Int(inOffset))
                }
                if errno == EINTR { continue }
                if errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP { break }  // fall back
                throw CheckpointError("copy failed: \(String(cString: strerror(errno)))", file: destination)
            }
        }
        guard left > 0 else { return }
        let chunk = 4 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: min(chunk, left), alignment: 64)
        defer { buf.deallocate() }
        while left > 0 {
            let n = pread(input, buf, min(chunk, left), off_t(inOffset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw CheckpointError(n == 0 ? "file ends before byte \(inOffset)" : "read failed: \(String(cString: strerror(errno)))",
                                      file: span.file.path, offset: Int(inOffset))
            }
            var done = 0
            while done < n {
                let w = position == nil ? write(out, buf + done, n - done) : pwrite(out, buf + done, n - done, off_t(outOffset) + off_t(done))
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw CheckpointError("write failed: \(String(cString: strerror(errno)))", file: destination) }
                done += w
            }
            outOffset += Int64(n)
            inOffset += Int64(n)
            left -= n
        }
    }
}
