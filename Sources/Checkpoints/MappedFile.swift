#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Bounds-checked slices; the mapping lives as long as the object.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CheckpointError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CheckpointError("not a regular file", file: path) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw CheckpointError("cannot map: \(String(cString: strerror(errno)))", file: path) }
            base = UnsafeRawPointer(p)
        }
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// The whole mapping (empty for an empty file). Valid while `self` is alive.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Bytes `[offset, offset+count)`, or a `CheckpointError` naming the offset if out of bounds.
    public func slice(_ offset: Int, _ count: Int) throws -> UnsafeRawBufferPointer {
        let (end, o) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !o, end <= size else {
            throw CheckpointError("needs bytes \(offset)..<\(o ? Int.max : end) but the file has \(size)", file: path, offset: offset)
        }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }

    /// Copies `[offset, offset+count)` into an array.
    public func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        Array(try slice(offset, count))
    }
}
