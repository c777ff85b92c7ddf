import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written beside its destination under a temporary name and renamed into place on `commit()`.
/// If the writer fails or the process dies, the destination is untouched and the temporary file is removed
/// (on failure) or left as an obviously temporary name (on a kill).
public final class AtomicOutput {
    public let destination: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    public private(set) var bytesWritten = 0

    public init(destination: String) throws {
        self.destination = destination
        let dir = (destination as NSString).deletingLastPathComponent
        let base = (destination as NSString).lastPathComponent
        temporaryPath = (dir.isEmpty ? "." : dir) + "/.\(base).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw CheckpointError("cannot create output: \(String(cString: strerror(errno)))", file: temporaryPath)
        }
    }

    deinit {
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(temporaryPath)
        }
    }

    public func write(_ buf: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buf.count {
            let r = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
            if r < 0 {
                if errno == EINTR { continue }
                throw CheckpointError("write failed: \(String(cString: strerror(errno)))", file: destination, offset: bytesWritten + done)
            }
            done += r
        }
        bytesWritten += done
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends bytes that lie verbatim in an input file, copied file-to-file by the kernel where it can.
    public func write(_ span: FileSpan) throws {
        try FileCopy.append(span, to: fd, destination: destination)
        bytesWritten += span.count
    }

    /// Renames the finished file over `destination`; with `durable`, first waits until its bytes are on disk
    /// (fsync), so a power failure right after cannot leave an empty or partial file at `destination`.
    public func commit(durable: Bool = false) throws {
        if durable {
            guard fsync(fd) == 0 else { throw CheckpointError("fsync failed: \(String(cString: strerror(errno)))", file: destination) }
        }
        close(fd)
        fd = -1
        guard rename(temporaryPath, destination) == 0 else {
            throw CheckpointError("cannot move output into place: \(String(cString: strerror(errno)))", file: destination)
        }
        committed = true
    }
}
