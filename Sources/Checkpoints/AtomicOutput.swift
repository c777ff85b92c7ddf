import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written beside its destination under a temporary name and moved into place on `commit()`.
///
/// - The destination is only ever a regular file: an existing directory, device, FIFO, socket or symbolic link
///   there is refused (checked with `lstat` when opening and again just before the move).
/// - Without `overwrite`, the move is an atomic no-replace rename (`renameat2(RENAME_NOREPLACE)`, or `link` +
///   `unlink` where the file system lacks it), so a file that appears at the destination meanwhile — another
///   convert finishing first — is never replaced: exactly one of two concurrent writers succeeds.
/// - The temporary name, `.<name>.partial-<8 hex>`, stays within NAME_MAX (255 bytes) for any valid name: a long
///   destination name is shortened in the temporary name only.
/// - If the writer fails, the temporary file is removed; on SIGINT, SIGTERM or SIGHUP it is removed too and the
///   process then dies of the signal as it would have (`PendingOutputs`). Only a SIGKILL (or a crash) leaves it.
public final class AtomicOutput {
    public let destination: String
    public let temporaryPath: String
    /// Whether `commit()` may replace an existing regular file at `destination`.
    public let overwrite: Bool
    private var fd: Int32
    private var committed = false
    private var cleanupSlot: Int?
    public private(set) var bytesWritten = 0

    /// Opens a temporary file beside `destination`. With `overwrite` false, an existing destination is an error
    /// now and at `commit()`; with it true, only a regular file there may be replaced.
    public init(destination: String, overwrite: Bool = true) throws {
        self.destination = destination
        self.overwrite = overwrite
        try Self.checkDestination(destination, overwrite: overwrite)
        let dir = PathText.parent(destination)
        let base = PathText.lastComponent(destination)
        var fd: Int32 = -1
        var path = ""
        var slot: Int?
        for _ in 0..<16 {
            path = (dir.isEmpty ? "" : dir + "/") + Self.temporaryName(for: base)
            // Armed for removal on a signal before it exists, so no signal can leave it behind.
            slot = PendingOutputs.register(path)
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 { break }
            let e = errno
            if let s = slot { PendingOutputs.unregister(s) }
            slot = nil
            errno = e
            if e != EEXIST { break }
        }
        guard fd >= 0 else {
            throw CheckpointError("cannot create the temporary output \(path): \(String(cString: strerror(errno)))", file: destination)
        }
        self.fd = fd
        temporaryPath = path
        cleanupSlot = slot
    }

    deinit {
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(temporaryPath)
        }
        if let cleanupSlot { PendingOutputs.unregister(cleanupSlot) }
    }

    /// `.<base>.partial-<8 hex digits>`, with `base` cut (at a UTF-8 character boundary) so that the whole name
    /// is at most 255 bytes.
    static func temporaryName(for base: String) -> String {
        let suffix = ".partial-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        let room = 255 - 1 - suffix.utf8.count
        var kept = ""
        var bytes = 0
        for ch in base.unicodeScalars {
            let n = String(ch).utf8.count
            if bytes + n > room { break }
            kept.unicodeScalars.append(ch)
            bytes += n
        }
        return "." + kept + suffix
    }

    /// Throws unless `path` may be written: absent, or (with `overwrite`) an existing regular file. A symbolic
    /// link is refused rather than followed or replaced, and so is any other kind of node.
    public static func checkDestination(_ path: String, overwrite: Bool) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw CheckpointError("cannot check the output path: \(String(cString: strerror(errno)))", file: path)
        }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFLNK {
            throw CheckpointError("the output path is a symbolic link; refusing to replace or follow it (give the file it points to)", file: path)
        }
        guard kind == S_IFREG else {
            throw CheckpointError("the output path is \(InputFile.kindName(st.st_mode)), not a regular file; refusing to replace it", file: path)
        }
        guard overwrite else { throw CheckpointError("already exists (use --force to overwrite)", file: path) }
    }

    public func write(_ buf: UnsafeRawBufferPointer) throws {
        guard let start = buf.baseAddress else { return }
        var done = 0
        while done < buf.count {
            let r = Glibc.write(fd, start + done, buf.count - done)
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
    package func write(_ span: FileSpan) throws {
        try FileCopy.append(span, to: fd, destination: destination)
        bytesWritten += span.count
    }

    /// Writes `buf` at byte `position` of the output without moving the write position (`pwrite`): chunks of one
    /// tensor are placed into its region this way, then `advance(to:)` moves past the region.
    package func write(_ buf: UnsafeRawBufferPointer, at position: Int) throws {
        guard let start = buf.baseAddress else { return }
        var done = 0
        while done < buf.count {
            let r = pwrite(fd, start + done, buf.count - done, off_t(position + done))
            if r < 0 {
                if errno == EINTR { continue }
                throw CheckpointError("write failed: \(String(cString: strerror(errno)))", file: destination, offset: position + done)
            }
            done += r
        }
    }

    /// Copies bytes that lie verbatim in an input file to byte `position` of the output (see `write(_:at:)`).
    package func write(_ span: FileSpan, at position: Int) throws {
        try FileCopy.append(span, to: fd, destination: destination, at: position)
    }

    /// Moves the write position to `position` (past a region filled by positioned writes) and counts the bytes
    /// up to it as written.
    package func advance(to position: Int) throws {
        guard lseek(fd, off_t(position), SEEK_SET) >= 0 else {
            throw CheckpointError("seek failed: \(String(cString: strerror(errno)))", file: destination, offset: position)
        }
        bytesWritten = position
    }

    /// Moves the finished file to `destination` (see the type's notes on replacing); with `durable`, first waits
    /// until its bytes are on disk (fsync), so a power failure right after cannot leave an empty or partial file.
    public func commit(durable: Bool = false) throws {
        if durable {
            guard fsync(fd) == 0 else { throw CheckpointError("fsync failed: \(String(cString: strerror(errno)))", file: destination) }
        }
        close(fd)
        fd = -1
        try Self.checkDestination(destination, overwrite: overwrite)
        if overwrite {
            guard rename(temporaryPath, destination) == 0 else {
                throw CheckpointError("cannot move output into place: \(String(cString: strerror(errno)))", file: destination)
            }
        } else {
            try Self.renameNoReplace(temporaryPath, destination)
        }
        committed = true
        if let cleanupSlot { PendingOutputs.unregister(cleanupSlot) }
        cleanupSlot = nil
    }

    typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

    /// glibc's `renameat2` (2.28+), looked up at run time since Swift's Glibc module does not declare it.
    static let renameat2: RenameAt2? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(sym, to: RenameAt2.self)
    }()

    static let renameNoReplaceFlag: UInt32 = 1  // RENAME_NOREPLACE

    /// Renames `from` to `to` unless `to` exists, atomically: `renameat2(RENAME_NOREPLACE)`; where the kernel or
    /// file system does not support it, `link(from, to)` (fails if `to` exists) then `unlink(from)`.
    /// (`useRenameat2: false` exercises the fallback in tests.)
    static func renameNoReplace(_ from: String, _ to: String, useRenameat2: Bool = true) throws {
        func exists() -> CheckpointError { CheckpointError("already exists (use --force to overwrite)", file: to) }
        if useRenameat2, let renameat2 {
            if renameat2(AT_FDCWD, from, AT_FDCWD, to, renameNoReplaceFlag) == 0 { return }
            let e = errno
            if e == EEXIST { throw exists() }
            guard e == EINVAL || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP else {
                throw CheckpointError("cannot move output into place: \(String(cString: strerror(e)))", file: to)
            }
        }
        if link(from, to) == 0 {
            unlink(from)
            return
        }
        let e = errno
        if e == EEXIST { throw exists() }
        throw CheckpointError("cannot move output into place without replacing (this file system supports neither "
                              + "renameat2 RENAME_NOREPLACE nor hard links: \(String(cString: strerror(e)))); use --force", file: to)
    }
}
