#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Bounds-checked slices; the mapping lives as long as the object.
///
/// A file that shrinks while mapped (truncated by another process) would make the next access to a page past
/// its new end die of SIGBUS. `MappingGuard` turns that into an error: its handler replaces the vanished pages
/// with zeros and records the fault; `read`/`copyReleasing`, `TensorEntry.load` and `Checkpoint.open` then
/// throw one error naming the file instead of returning what they read.
package final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?
    private let guardSlot: Int?

    public init(path: String) throws {
        self.path = path
        let (fd, size) = try InputFile.open(path)
        defer { close(fd) }
        self.size = size
        if size == 0 {
            base = nil
            guardSlot = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw CheckpointError("cannot map: \(String(cString: strerror(errno)))", file: path) }
            base = UnsafeRawPointer(p)
            guardSlot = MappingGuard.register(start: UnsafeRawPointer(p), count: size, path: path)
        }
    }

    deinit {
        if let base {
            if let guardSlot { MappingGuard.unregister(guardSlot) }
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        }
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
        let out = Array(try slice(offset, count))
        try checkIntact()
        return out
    }

    /// Throws if part of the file vanished while mapped (what was read from the mapping may then be zeros).
    public func checkIntact() throws {
        if let guardSlot, MappingGuard.faulted(guardSlot) { throw MappingGuard.shrankError(path) }
    }
}
