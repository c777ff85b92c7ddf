#if canImport(Glibc)
import Glibc
#endif
import CHDF5
import Foundation
import TensorCore

/// The child process that runs libhdf5 for one input file (see `H5Isolation`): forked for the walk, kept for the
/// loads, forked again (without a walk) if a load killed it. Thread-safe: one request at a time.
final class H5Server: @unchecked Sendable {
    let source: H5Source
    var path: String { source.path }
    private let lock = NSLock()
    private var pid: pid_t = -1
    private var socket: Int32 = -1

    init(source: H5Source) { self.source = source }

    /// The serving child's process id (-1 between a crash and the next load).
    var childPID: pid_t { lock.lock(); defer { lock.unlock() }; return pid }

    deinit { stop() }

    /// Forks the child (walking the file first when `walk`), and returns the walk's result.
    func start(walk: Bool) throws -> H5Isolation.Walk? {
        var fds: [Int32] = [-1, -1]
        // Close-on-exec: a program the caller spawns later must not hold the socket (the child would not see its end).
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw CheckpointError("cannot start the HDF5 reading process: socketpair: \(String(cString: strerror(errno)))", file: path)
        }
        for fd in fds {
            var size: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        H5.prepare()
        H5.lock.lock()
        let child = fork()
        if child != 0 { H5.lock.unlock() } // the child never touches the lock again
        if child < 0 {
            let why = String(cString: strerror(errno))
            close(fds[0]); close(fds[1])
            throw CheckpointError("cannot start the HDF5 reading process: fork: \(why)", file: path)
        }
        if child == 0 {
            close(fds[0])
            Self.childMain(source: source, socket: fds[1], walk: walk)
        }
        close(fds[1])
        pid = child
        socket = fds[0]
        guard walk else { return nil }
        guard let reply = H5Isolation.receiveMessage(socket) else {
            throw ended(while: "reading its structure")
        }
        var reader = H5Isolation.ByteReader(bytes: reply)
        do {
            switch try reader.u8() {
            case 0: return try H5Isolation.decodeWalk(&reader)
            default:
                let e = try H5Isolation.decodeError(&reader)
                stop()
                throw e
            }
        } catch is H5Isolation.ByteReader.Truncated {
            stop()
            throw CheckpointError("corrupt HDF5 file: the reading process sent a malformed answer", file: path, member: source.member)
        }
    }

    /// Reads one dataset in the child.
    func load(_ d: H5Dataset) throws -> Tensor {
        lock.lock(); defer { lock.unlock() }
        if pid < 0 { _ = try start(walk: false) }
        var request = H5Isolation.ByteWriter()
        H5Isolation.encode(d, into: &request)
        guard H5Isolation.sendMessage(socket, request.bytes) else { throw ended(while: "reading dataset '\(d.hdfPath)'") }
        var status: UInt8 = 0
        guard withUnsafeMutableBytes(of: &status, { H5Isolation.receive(socket, into: $0) }) else {
            throw ended(while: "reading dataset '\(d.hdfPath)'")
        }
        if status != 0 {
            guard let payload = H5Isolation.receiveMessage(socket) else { throw ended(while: "reading dataset '\(d.hdfPath)'") }
            var r = H5Isolation.ByteReader(bytes: payload)
            guard let e = try? H5Isolation.decodeError(&r) else {
                throw CheckpointError("HDF5 dataset '\(d.hdfPath)': the reading process sent a malformed answer", file: path)
            }
            throw e
        }
        guard let n = H5Isolation.receiveCount(socket, limit: Int.max), n == d.byteCount else {
            throw ended(while: "reading dataset '\(d.hdfPath)'")
        }
        var complete = false
        let bytes = [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            complete = n == 0 || H5Isolation.receive(socket, into: UnsafeMutableRawBufferPointer(buf))
            count = complete ? n : 0
        }
        guard complete else { throw ended(while: "reading dataset '\(d.hdfPath)'") }
        return Tensor(dtype: d.dtype, shape: d.shape, bytes: bytes)
    }

    /// Closes the socket and reaps the child (killing it if it does not leave within a second).
    private func stop() {
        if socket >= 0 { close(socket); socket = -1 }
        guard pid > 0 else { return }
        var status: Int32 = 0
        for _ in 0..<100 {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { pid = -1; return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = -1
    }

    /// The error for a child that closed its socket: it crashed, was stopped by the time limit, or ran out of memory.
    private func ended(while doing: String) -> CheckpointError {
        if socket >= 0 { close(socket); socket = -1 }
        var status: Int32 = 0
        if pid > 0 {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            pid = -1
        }
        let signal = status & 0x7F
        let what: String
        if signal == SIGALRM {
            what = "did not finish within \(H5Isolation.timeLimit) s (WEIGHTS_HDF5_TIME_LIMIT sets the limit)"
        } else if signal != 0 && signal != 0x7F {
            what = "crashed (signal \(signal))"
        } else {
            what = "ended early (exit status \((status >> 8) & 0xFF))"
        }
        return CheckpointError("corrupt HDF5 file: libhdf5 \(what) while \(doing)", file: path, member: source.member)
    }

    // MARK: child

    private static func childMain(source: H5Source, socket: Int32, walk: Bool) -> Never {
        let path = source.path
        // A crash here must die quietly: no crash backtrace on the user's terminal.
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT] { signal(sig, SIG_DFL) }
        weights_close_other_fds(socket, socket)
        let devnull = open("/dev/null", O_WRONLY)
        if devnull >= 0 { dup2(devnull, 2); close(devnull) }
        var file: H5File?
        if walk {
            alarm(H5Isolation.timeLimit)
            H5Isolation.limitMemory(extra: 512 << 20)
            var out = H5Isolation.ByteWriter()
            do {
                let (w, f) = try H5Isolation.walkHere(source: source, underLock: false)
                file = f
                out.u8(0)
                H5Isolation.encode(w, into: &out)
            } catch {
                out.u8(1)
                H5Isolation.encode(Self.checkpointError(error, source: source), into: &out)
            }
            alarm(0)
            guard H5Isolation.sendMessage(socket, out.bytes), file != nil else { _exit(0) }
        }
        while let request = H5Isolation.receiveMessage(socket) {
            var r = H5Isolation.ByteReader(bytes: request)
            guard let d = try? H5Isolation.decodeDataset(&r) else { _exit(2) }
            // The time limit, plus a second per 64 MiB of data (a large gzip dataset legitimately takes a while).
            alarm(H5Isolation.timeLimit &+ UInt32(clamping: max(0, d.byteCount) >> 26))
            let (triple, o) = d.byteCount.multipliedReportingOverflow(by: 3)
            H5Isolation.limitMemory(extra: o ? Int.max / 2 : min(Int.max / 2, (512 << 20) + triple))
            do {
                if file == nil { file = try H5File(source: source, closeUnderLock: false) }
                let tensor = try d.load(file!)
                guard tensor.bytes.count == d.byteCount else {
                    throw CheckpointError("HDF5 dataset '\(d.hdfPath)': read \(tensor.bytes.count) bytes, expected \(d.byteCount)", file: path)
                }
                alarm(0) // sending is bounded by the parent, which is reading
                var header = H5Isolation.ByteWriter()
                header.u8(0)
                header.int(tensor.bytes.count)
                guard header.bytes.withUnsafeBytes({ H5Isolation.send(socket, $0) }),
                      tensor.bytes.withUnsafeBytes({ H5Isolation.send(socket, $0) }) else { _exit(0) }
            } catch {
                alarm(0)
                var out = H5Isolation.ByteWriter()
                H5Isolation.encode(Self.checkpointError(error, source: source), into: &out)
                var status: UInt8 = 1
                guard withUnsafeBytes(of: &status, { H5Isolation.send(socket, $0) }),
                      H5Isolation.sendMessage(socket, out.bytes) else { _exit(0) }
            }
        }
        _exit(0)
    }

    private static func checkpointError(_ error: Error, source: H5Source) -> CheckpointError {
        (error as? CheckpointError)?.context(file: source.path, member: source.member)
            ?? CheckpointError("\(error)", file: source.path, member: source.member)
    }
}
