import CZip

/// A read-only zip archive (PyTorch zip checkpoints, `.npz`) through libzip, with bounded member reads.
public final class ZipArchive: @unchecked Sendable {
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
        guard let h = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err) else {
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
            var out = [UInt8](repeating: 0, count: want)
            var got = 0
            while got < want {
                let r = out.withUnsafeMutableBytes { zip_fread(f, $0.baseAddress! + got, zip_uint64_t(want - got)) }
                if r < 0 {
                    throw CheckpointError("corrupt record: \(String(cString: zip_file_strerror(f)))", file: path, member: m.name, offset: offset + got)
                }
                if r == 0 {
                    throw CheckpointError("record ends after \(offset + got) bytes, expected \(offset + want)", file: path, member: m.name, offset: offset + got)
                }
                got += Int(r)
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

/// libzip handles are not thread-safe; serialise reads.
final class ZipLock: @unchecked Sendable {
    private let l = NSLock()
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        l.lock(); defer { l.unlock() }
        return try body()
    }
}
