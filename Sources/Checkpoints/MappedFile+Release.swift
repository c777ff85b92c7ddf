#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MappedFile {
    /// Copies `[offset, offset+count)` out of the mapping, then lets the kernel drop those pages again, so that
    /// converting a large file tensor by tensor does not keep the whole file resident.
    func copyReleasing(_ offset: Int, _ count: Int) throws -> [UInt8] {
        let src = try slice(offset, count)
        let out = [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            if count > 0, let dst = buf.baseAddress, let s = src.baseAddress {
                UnsafeMutableRawPointer(dst).copyMemory(from: s, byteCount: count)
            }
            n = count
        }
        release(offset, count)
        try checkIntact()
        return out
    }

    /// Drops the whole pages inside `[offset, offset+count)` from memory (the mapping is private and read-only:
    /// a later access just reads the file again). Small ranges are left alone.
    func release(_ offset: Int, _ count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0, count > 4 * page, offset >= 0, count <= size - offset, let base = bytes.baseAddress else { return }
        let first = (offset + page - 1) / page * page
        let end = (offset + count) / page * page
        if end > first {
            _ = madvise(UnsafeMutableRawPointer(mutating: base + first), end - first, MADV_DONTNEED)
        }
    }
}
