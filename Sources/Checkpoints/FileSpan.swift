#if canImport(Glibc)
import Glibc
#endif

/// An input file opened read-only once and shared by the tensor entries that point into it.
package final class SourceFile: @unchecked Sendable {
    public let path: String
    let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = try InputFile.open(path).fd
    }

    deinit { close(fd) }
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
        var inOffset = Int64(span.offset)
        var outOffset = Int64(position ?? 0)
        var left = span.count
        if let cfr = copyFileRange {
            while left > 0 {
                let r = position == nil ? cfr(span.file.fd, &inOffset, out, nil, min(left, 1 << 30), 0)
                                        : cfr(span.file.fd, &inOffset, out, &outOffset, min(left, 1 << 30), 0)
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
            let n = pread(span.file.fd, buf, min(chunk, left), off_t(inOffset))
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
