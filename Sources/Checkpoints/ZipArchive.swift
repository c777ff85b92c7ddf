import CZip

/// A read-only zip archive (PyTorch zip checkpoints, `.npz`) through libzip, with bounded member reads.
package final class ZipArchive: @unchecked Sendable {
    public struct Member: Sendable {
        public let index: Int
        public let name: String
        public let size: Int
        public let compressedSize: Int
        public let isStored: Bool
    }

    public let path: String
    public let members: [Member]
    private let handle: OpaquePointer
    private let byName: [String: Int]

    /// Deflated members may expand at most this much beyond `bombRatio ×` their compressed size.
    static let bombAllowance = 64 << 20
    static let bombRatio = 200

    public init(path: String) throws {
        self.path = path
        var err: Int32 = 0
        let fd = try InputFile.open(path).fd  // a regular file, opened without blocking (then owned by libzip)
        guard let h = zip_fdopen(fd, ZIP_CHECKCONS, &err) else {
            close(fd)
            var ze = zip_error_t()
            zip_error_init_with_code(&ze, err)
            let msg = String(cString: zip_error_strerror(&ze))
            zip_error_fini(&ze)
            throw CheckpointError("not a readable zip archive (\(msg))", file: path)
        }
        handle = h
        let n = zip_get_num_entries(h, 0)
        var ms: [Member] = []
        var map: [String: Int] = [:]
        for i in 0..<max(n, 0) {
            var st = zip_stat_t()
            zip_stat_init(&st)
            guard zip_stat_index(h, zip_uint64_t(i), 0, &st) == 0, let cname = st.name else { continue }
            let name = String(cString: cname)
            guard st.size <= UInt64(Int.max), st.comp_size <= UInt64(Int.max) else {
                zip_close(h)
                throw CheckpointError("declares an impossible size", file: path, member: name)
            }
            let m = Member(index: Int(i), name: name, size: Int(st.size), compressedSize: Int(st.comp_size),
                           isStored: st.comp_method == ZIP_CM_STORE)
            map[name] = ms.count
            ms.append(m)
        }
        members = ms
        byName = map
        storedOffsets = (try? ZipDirectory.storedDataOffsets(path: path)) ?? [:]
    }

    /// Absolute file offsets of the data of stored (uncompressed) members, from our own read of the central
    /// directory; empty if that read fails (then every read goes through libzip).
    private let storedOffsets: [String: Int]
    private let sourceLock = ZipLock()
    nonisolated(unsafe) private var openedSource: SourceFile?

    /// Where member `m`'s bytes `[offset, offset+count)` lie verbatim in the archive file, if it is stored.
    public func span(_ m: Member, offset: Int, count: Int) -> FileSpan? {
        guard m.isStored, let start = storedOffsets[m.name], offset >= 0, count >= 0, offset <= m.size, count <= m.size - offset
        else { return nil }
        let file: SourceFile? = sourceLock.withLock {
            if openedSource == nil { openedSource = try? SourceFile(path: path) }
            return openedSource
        }
        return file.map { FileSpan(file: $0, offset: start + offset, count: count) }
    }

    deinit { zip_discard(handle) }

    public func member(named name: String) -> Member? { byName[name].map { members[$0] } }

    /// Reads `count` bytes at `offset` of a member. Throws if the member is shorter, corrupt, or a likely zip bomb.
    public func read(_ m: Member, offset: Int = 0, count: Int? = nil) throws -> [UInt8] {
        let want = count ?? (m.size - offset)
        let (end, o) = offset.addingReportingOverflow(want)
        guard offset >= 0, want >= 0, !o, end <= m.size else {
            throw CheckpointError("needs bytes \(offset)..<\(o ? Int.max : end) but the record holds \(m.size)", file: path, member: m.name, offset: offset)
        }
        if !m.isStored {
            let limit = max(Self.bombAllowance, m.compressedSize.multipliedReportingOverflow(by: Self.bombRatio).partialValue)
            if m.size > limit {
                throw CheckpointError("compressed record of \(m.compressedSize) bytes claims to expand to \(m.size) bytes (likely a zip bomb)", file: path, member: m.name)
            }
        }
        return try lock.withLock {
            guard let f = zip_fopen_index(handle, zip_uint64_t(m.index), 0) else {
                throw CheckpointError("cannot open record: \(String(cString: zip_strerror(handle)))", file: path, member: m.name)
            }
            defer { zip_fclose(f) }
            if offset > 0 {
                if m.isStored {
                    guard zip_fseek(f, zip_int64_t(offset), SEEK_SET) == 0 else {
                        throw CheckpointError("cannot seek: \(String(cString: zip_file_strerror(f)))", file: path, member: m.name, offset: offset)
                    }
                } else {
                    try skip(f, offset, m)
                }
            }
            // Filled by zip_fread; not zeroed first (a tensor can be hundreds of MB).
            let out = try [UInt8](unsafeUninitializedCapacity: want) { buf, initialized in
                initialized = 0
                var got = 0
                while got < want {
                    let r = zip_fread(f, buf.baseAddress! + got, zip_uint64_t(want - got))
                    if r < 0 {
                        throw CheckpointError("corrupt record: \(String(cString: zip_file_strerror(f)))", file: path, member: m.name, offset: offset + got)
                    }
                    if r == 0 {
                        throw CheckpointError("record ends after \(offset + got) bytes, expected \(offset + want)", file: path, member: m.name, offset: offset + got)
                    }
                    got += Int(r)
                }
                initialized = want
            }
            return out
        }
    }

    private func skip(_ f: OpaquePointer, _ count: Int, _ m: Member) throws {
        var left = count
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while left > 0 {
            let r = buf.withUnsafeMutableBytes { zip_fread(f, $0.baseAddress!, zip_uint64_t(min(left, $0.count))) }
            guard r > 0 else { throw CheckpointError("record ends early", file: path, member: m.name, offset: count - left) }
            left -= Int(r)
        }
    }

    private let lock = ZipLock()
}

import Foundation

/// Just enough of the zip format to find where each stored member's data starts (libzip does not expose it):
/// end-of-central-directory record (and its zip64 form), central directory headers, local headers.
enum ZipDirectory {
    static func storedDataOffsets(path: String) throws -> [String: Int] {
        // pread through a small window rather than a memory map: with large page-cache folios, touching one
        // local header per tensor through a map of a 2.5 GB file added ~70 MB of the file to the resident set.
        let f = try WindowedReader(path: path)
        func u16(_ o: Int) throws -> Int { Int(try f.bytes(o, 2).withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }.littleEndian) }
        func u32(_ o: Int) throws -> Int { Int(try f.bytes(o, 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian) }
        func u64(_ o: Int) throws -> Int {
            let v = try f.bytes(o, 8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            guard v <= UInt64(Int.max) else { throw CheckpointError("zip offset overflows", file: path, offset: o) }
            return Int(v)
        }
        // End of central directory: the last signature within the final 64 KiB + 22 bytes.
        guard f.size >= 22 else { return [:] }
        var eocd = -1
        var o = f.size - 22
        while o >= max(0, f.size - 22 - 65535) {
            if try u32(o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { return [:] }
        var entries = try u16(eocd + 10)
        var cdOffset = try u32(eocd + 16)
        if (entries == 0xFFFF || cdOffset == 0xFFFF_FFFF), eocd >= 20, try u32(eocd - 20) == 0x0706_4B50 {
            let z = try u64(eocd - 20 + 8)
            guard try u32(z) == 0x0606_4B50 else { return [:] }
            entries = try u64(z + 32)
            cdOffset = try u64(z + 48)
        }
        var out: [String: Int] = [:]
        var p = cdOffset
        for _ in 0..<min(entries, f.size / 46) {
            guard try u32(p) == 0x0201_4B50 else { return [:] }
            let method = try u16(p + 10)
            let nameLen = try u16(p + 28), extraLen = try u16(p + 30), commentLen = try u16(p + 32)
            var compSize = try u32(p + 20), size = try u32(p + 24), local = try u32(p + 42)
            let name = String(decoding: try f.bytes(p + 46, nameLen), as: UTF8.self)
            // zip64 extra field: 64-bit values for whichever of size, compressed size, local offset are 0xFFFFFFFF.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try u16(e), len = try u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = try u64(q); q += 8 }
                    if compSize == 0xFFFF_FFFF { compSize = try u64(q); q += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(q) }
                }
                e += 4 + len
            }
            if method == 0 && compSize == size {
                guard try u32(local) == 0x0403_4B50 else { return [:] }
                let start = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
                let (end, overflow) = start.addingReportingOverflow(size)
                if !overflow && end <= f.size { out[name] = start }
            }
            p += 46 + nameLen + extraLen + commentLen
        }
        return out
    }
}

/// Bounds-checked reads of a file through a 64 KiB window (one `pread` per miss): sequential scans hit the
/// window, scattered reads cost one small `pread` each, and nothing stays mapped.
final class WindowedReader {
    let path: String
    let size: Int
    private let fd: Int32
    private var window: [UInt8] = []
    private var windowStart = 0
    private static let windowSize = 1 << 16

    init(path: String) throws {
        self.path = path
        (fd, size) = try InputFile.open(path)
    }

    deinit { close(fd) }

    /// Bytes `[offset, offset+count)`. Throws naming the offset when out of bounds. A miss refills the window
    /// forwards from `offset`, or backwards ending at the request when reading towards the file's start.
    func bytes(_ offset: Int, _ count: Int) throws -> ArraySlice<UInt8> {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= size else {
            throw CheckpointError("read of \(count) bytes at offset \(offset) is outside the file (\(size) bytes)", file: path, offset: offset)
        }
        if offset < windowStart || end > windowStart + window.count {
            let start = offset < windowStart ? Swift.max(0, end - Self.windowSize) : offset
            let want = Swift.min(Swift.max(end - start, Self.windowSize), size - start)
            window = try [UInt8](unsafeUninitializedCapacity: want) { buf, n in
                n = 0
                while n < want {
                    let r = pread(fd, buf.baseAddress! + n, want - n, off_t(start + n))
                    if r < 0 && errno == EINTR { continue }
                    guard r > 0 else {
                        throw CheckpointError("cannot read: \(r < 0 ? String(cString: strerror(errno)) : "file ends early")", file: path, offset: start + n)
                    }
                    n += r
                }
            }
            windowStart = start
        }
        return window[(offset - windowStart)..<(end - windowStart)]
    }
}

/// libzip handles are not thread-safe; serialise reads.
final class ZipLock: @unchecked Sendable {
    private let l = NSLock()
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        l.lock(); defer { l.unlock() }
        return try body()
    }
}
