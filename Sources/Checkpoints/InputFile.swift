#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way input files are opened. `open` with O_NONBLOCK, so that a FIFO (or a device) cannot block the
/// open itself, then `fstat` on the descriptor (no race with a swapped path), a refusal of anything but a regular
/// file, and only then O_NONBLOCK cleared. The result is a read-only descriptor of a regular file.
package enum InputFile {
    /// Opens `path` read-only; throws one `CheckpointError` naming the file for a missing, unreadable or
    /// non-regular file. The caller closes the descriptor.
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        var e: Int32 = 0
        return try open(path, openErrno: &e)
    }

    /// As `open(_:)`; when `open(2)` itself fails, `openErrno` is its errno (EMFILE: out of descriptors).
    static func open(_ path: String, openErrno: inout Int32) throws -> (fd: Int32, size: Int) {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            openErrno = errno
            throw CheckpointError("cannot open: \(String(cString: strerror(openErrno)))", file: path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw CheckpointError("cannot stat: \(String(cString: strerror(e)))", file: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CheckpointError("is \(kindName(st.st_mode)), not a regular file", file: path)
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
            let e = errno
            close(fd)
            throw CheckpointError("cannot set up reading: \(String(cString: strerror(e)))", file: path)
        }
        return (fd, Int(st.st_size))
    }

    /// "a directory", "a FIFO", … for a `st_mode`.
    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        case S_IFREG: return "a regular file"
        default: return "a special file"
        }
    }
}
