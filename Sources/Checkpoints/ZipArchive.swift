import CZip
import Foundation

/// A read-only zip archive (PyTorch zip checkpoints, `.npz`). The directory comes from `ZipDirectory` (the one
/// parser every path uses); stored members are read with `pread` at the offsets it found, deflated members are
/// inflated with zlib. Every member read into memory has its CRC-32 checked (once per member); zero-copy spans
/// are checked too when the archive is opened with `verifyCRC`.
package final class ZipArchive: @unchecked Sendable {
    public struct Member: Sendable {
        public let index: Int
        public let name: String
        public let size: Int
        public let compressedSize: Int
        public let isStored: Bool
        package let crc32: UInt32
        package let dataOffset: Int
    }

    public let path: String
    public let members: [Member]
    /// Whether zero-copy spans are CRC-checked before they are handed out (reads into memory always are).
    public let verifyCRC: Bool
    private let byName: [String: Int]
    private let file: SourceFile

    /// Deflated members may expand at most this much beyond `bombRatio ×` their compressed size.
    static let bombAllowance = 64 << 20
    static let bombRatio = 200
    /// Inflated members kept for further views of the same storage (a storage viewed by 20 000 tensors is
    /// inflated once, not 20 000 times). Beyond this many bytes the cache is emptied before adding another.
    static let inflatedCacheBytes = 1 << 30
    /// A member too large for the cache may be inflated this many times (by views read in turn); beyond that the
    /// read is refused rather than inflating it once per view.
    static let maxInflationsPerMember = 8

    private let cacheBytes: Int

    public convenience init(path: String, verifyCRC: Bool = false) throws {
        try self.init(path: path, verifyCRC: verifyCRC, cacheBytes: Self.inflatedCacheBytes)
    }

    package convenience init(path: String, verifyCRC: Bool, cacheBytes: Int) throws {
        try self.init(path: path, range: nil, verifyCRC: verifyCRC, cacheBytes: cacheBytes)
    }

    /// An archive occupying bytes `range` of the file (a `torch.save` payload inside a DCP `.distcp` file), or the
    /// whole file when `range` is nil. Nothing outside the range is read.
    /// `sharing` is the already opened file to read through (many payloads of one file share one descriptor).
    package init(path: String, range: Range<Int>?, verifyCRC: Bool = false, cacheBytes: Int = ZipArchive.inflatedCacheBytes,
                 sharing: SourceFile? = nil) throws {
        self.path = path
        self.verifyCRC = verifyCRC
        self.cacheBytes = cacheBytes
        let entries = try range.map { try ZipDirectory.read(path: path, range: $0) } ?? ZipDirectory.read(path: path)
        let base = range?.lowerBound ?? 0
        var ms: [Member] = []
        var map: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            map[e.name] = i
            ms.append(Member(index: i, name: e.name, size: e.size, compressedSize: e.compressedSize, isStored: e.isStored,
                             crc32: e.crc32, dataOffset: base + e.dataOffset))
        }
        members = ms
        byName = map
        file = try sharing ?? SourceFile(path: path)
    }

    public func member(named name: String) -> Member? { byName[name].map { members[$0] } }

    private let lock = NSLock()
    /// Members whose CRC-32 matched (by index).
    private var checked = Set<Int>()
    private var inflated: [Int: [UInt8]] = [:]
    private var inflatedBytes = 0
    private var inflationCount: [Int: Int] = [:]
    /// How many times members were inflated (tests check that views share one inflation).
    package private(set) var inflations = 0

    /// Where member `m`'s bytes `[offset, offset+count)` lie verbatim in the archive file, if it is stored.
    /// With `verifyCRC`, the member's CRC is checked first; a member that fails has no span (its read reports it).
    public func span(_ m: Member, offset: Int, count: Int) -> FileSpan? {
        guard m.isStored, offset >= 0, count >= 0, offset <= m.size, count <= m.size - offset else { return nil }
        if verifyCRC { guard (try? checkStored(m)) != nil else { return nil } }
        return FileSpan(file: file, offset: m.dataOffset + offset, count: count)
    }

    /// Reads `count` bytes at `offset` of a member. Throws if the member is shorter, fails its CRC, is corrupt, or
    /// is a likely zip bomb.
    public func read(_ m: Member, offset: Int = 0, count: Int? = nil) throws -> [UInt8] {
        let want = count ?? (m.size - offset)
        let (end, o) = offset.addingReportingOverflow(want)
        guard offset >= 0, want >= 0, !o, end <= m.size else {
            throw CheckpointError("needs bytes \(offset)..<\(o ? Int.max : end) but the record holds \(m.size)", file: path, member: m.name, offset: offset)
        }
        if m.isStored {
            try checkStored(m)
            return try preadBytes(m.dataOffset + offset, want, member: m)
        }
        let whole = try inflatedMember(m)
        if offset == 0 && want == whole.count { return whole }
        return Array(whole[offset..<end])
    }

    /// Checks a stored member's CRC-32 now (once per member), without reading it into memory.
    package func checkCRC(_ m: Member) throws {
        if m.isStored { try checkStored(m) } else { _ = try inflatedMember(m) }
    }

    /// CRC-32 of a stored member, computed once (streamed through a bounded buffer).
    private func checkStored(_ m: Member) throws {
        if lock.withLock({ checked.contains(m.index) }) { return }
        let chunk = 4 << 20
        var crc = CZip.crc32(0, nil, 0)
        var done = 0
        let buf = UnsafeMutableRawPointer.allocate(byteCount: max(1, min(chunk, m.size)), alignment: 64)
        defer { buf.deallocate() }
        while done < m.size {
            let n = min(chunk, m.size - done)
            try preadFully(buf, m.dataOffset + done, n, member: m)
            crc = CZip.crc32(crc, buf.assumingMemoryBound(to: UInt8.self), uInt(n))
            done += n
        }
        guard UInt32(truncatingIfNeeded: crc) == m.crc32 else {
            throw CheckpointError("bad CRC-32: the data hashes to \(Self.hex(crc)) but the archive says \(Self.hex(m.crc32)) (corrupted or altered member)",
                                  file: path, member: m.name)
        }
        lock.withLock { _ = checked.insert(m.index) }
    }

    /// The whole inflated member, CRC-checked; cached so several views of one deflated storage inflate it once.
    private func inflatedMember(_ m: Member) throws -> [UInt8] {
        if let hit = lock.withLock({ inflated[m.index] }) { return hit }
        let times = lock.withLock { inflationCount[m.index, default: 0] }
        guard times < Self.maxInflationsPerMember else {
            throw CheckpointError("deflated record of \(m.size) bytes was already inflated \(times) times (views of a compressed storage too large to keep in memory); refusing to inflate it once per view",
                                  file: path, member: m.name)
        }
        try checkExpansion(m)
        let compressed = try preadBytes(m.dataOffset, m.compressedSize, member: m)
        let out = try Self.inflateRaw(compressed, size: m.size, fail: { CheckpointError($0, file: path, member: m.name) })
        let crc = out.withUnsafeBufferPointer { CZip.crc32(0, $0.baseAddress, uInt($0.count)) }
        guard UInt32(truncatingIfNeeded: crc) == m.crc32 else {
            throw CheckpointError("bad CRC-32: the inflated data hashes to \(Self.hex(crc)) but the archive says \(Self.hex(m.crc32)) (corrupted or altered member)",
                                  file: path, member: m.name)
        }
        lock.withLock {
            inflations += 1
            inflationCount[m.index, default: 0] += 1
            if inflatedBytes + out.count > cacheBytes { inflated = [:]; inflatedBytes = 0 }
            if out.count <= cacheBytes { inflated[m.index] = out; inflatedBytes += out.count }
        }
        return out
    }

    /// Refuses a deflated member that claims to expand far beyond its compressed size (a likely zip bomb).
    private func checkExpansion(_ m: Member) throws {
        let limit = max(Self.bombAllowance, m.compressedSize.multipliedReportingOverflow(by: Self.bombRatio).partialValue)
        if m.size > limit {
            throw CheckpointError("compressed record of \(m.compressedSize) bytes claims to expand to \(m.size) bytes (likely a zip bomb)", file: path, member: m.name)
        }
    }

    /// Inflates a deflated member into `out` (exactly its size), under the same bomb limit and CRC-32 check as `read`,
    /// without keeping a copy in the cache (for a caller that holds the whole member itself).
    package func inflate(_ m: Member, into out: UnsafeMutableRawBufferPointer) throws {
        guard !m.isStored, out.count == m.size else {
            throw CheckpointError("inflate: member is stored or the buffer is not \(m.size) bytes", file: path, member: m.name)
        }
        try checkExpansion(m)
        // The compressed bytes stream through a bounded buffer: the peak is the inflated member, not both.
        let chunk = min(Self.streamChunk, max(1, m.compressedSize))
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        let bytes = out.bindMemory(to: UInt8.self)
        try Self.inflateRaw(count: m.compressedSize, chunk: chunk, into: bytes, fail: { CheckpointError($0, file: path, member: m.name) }) { at, n in
            try preadFully(buf, m.dataOffset + at, n, member: m)
            return UnsafePointer(buf.assumingMemoryBound(to: UInt8.self))
        }
        let crc = CZip.crc32(0, bytes.baseAddress, uInt(bytes.count))
        guard UInt32(truncatingIfNeeded: crc) == m.crc32 else {
            throw CheckpointError("bad CRC-32: the inflated data hashes to \(Self.hex(crc)) but the archive says \(Self.hex(m.crc32)) (corrupted or altered member)",
                                  file: path, member: m.name)
        }
    }

    /// Raw-deflate `input` into exactly `size` bytes: fewer, more, or bytes after the end of the stream are errors.
    static func inflateRaw(_ input: [UInt8], size: Int, fail: (String) -> CheckpointError) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: size) { outBuf, initialized in
            initialized = 0
            try inflateRaw(input, into: UnsafeMutableBufferPointer(rebasing: outBuf[0..<size]), fail: fail)
            initialized = size
        }
    }

    /// Compressed bytes read per step by `inflate(_:into:)`.
    static let streamChunk = 4 << 20

    /// The same, into `outBuf` (exactly `outBuf.count` bytes).
    static func inflateRaw(_ input: [UInt8], into outBuf: UnsafeMutableBufferPointer<UInt8>, fail: (String) -> CheckpointError) throws {
        try input.withUnsafeBufferPointer { inBuf in
            try inflateRaw(count: inBuf.count, chunk: 1 << 30, into: outBuf, fail: fail) { at, _ in inBuf.baseAddress! + at }
        }
    }

    /// The same, for `count` compressed bytes that `next(offset, n)` supplies `n` (at most `chunk`) at a time,
    /// valid until its next call.
    static func inflateRaw(count inputCount: Int, chunk: Int, into outBuf: UnsafeMutableBufferPointer<UInt8>, fail: (String) -> CheckpointError,
                           next: (_ offset: Int, _ n: Int) throws -> UnsafePointer<UInt8>) throws {
        let size = outBuf.count
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw fail("cannot start zlib") }
        defer { inflateEnd(&stream) }
        do {
            let outChunk = 1 << 30
            var inPos = 0, outPos = 0
            var status = Z_OK
            while true {
                if stream.avail_in == 0 && inPos < inputCount {
                    let n = min(chunk, inputCount - inPos)
                    stream.next_in = UnsafeMutablePointer(mutating: try next(inPos, n))
                    stream.avail_in = uInt(n); inPos += n
                }
                if stream.avail_out == 0 && outPos < size {
                    let n = min(outChunk, size - outPos)
                    stream.next_out = outBuf.baseAddress! + outPos
                    stream.avail_out = uInt(n); outPos += n
                }
                if stream.avail_out == 0 { break }   // output full: the stream must end here
                status = CZip.inflate(&stream, Z_NO_FLUSH)
                if status == Z_STREAM_END { break }
                if status == Z_BUF_ERROR && stream.avail_in == 0 && inPos == inputCount {
                    throw fail("deflate stream ends after \(stream.total_out) of \(size) bytes")
                }
                guard status == Z_OK else {
                    throw fail("corrupt deflate stream: \(stream.msg.map { String(cString: $0) } ?? "zlib error \(status)")")
                }
            }
            if status != Z_STREAM_END {
                // All `size` bytes are out; one byte of room shows whether the stream ends or goes on.
                var spare: UInt8 = 0
                if stream.avail_in == 0 && inPos < inputCount {
                    let n = min(chunk, inputCount - inPos)
                    stream.next_in = UnsafeMutablePointer(mutating: try next(inPos, n))
                    stream.avail_in = uInt(n); inPos += n
                }
                status = withUnsafeMutablePointer(to: &spare) { sp in
                    stream.next_out = sp
                    stream.avail_out = 1
                    return CZip.inflate(&stream, Z_NO_FLUSH)
                }
                if stream.avail_out == 0 { throw fail("deflate stream expands beyond the declared \(size) bytes") }
                guard status == Z_STREAM_END else {
                    if status == Z_OK || status == Z_BUF_ERROR { throw fail("deflate stream does not end after the declared \(size) bytes") }
                    throw fail("corrupt deflate stream: \(stream.msg.map { String(cString: $0) } ?? "zlib error \(status)")")
                }
            }
            guard Int(stream.total_out) == size else {
                throw fail("deflate stream holds \(stream.total_out) bytes but the archive declares \(size)")
            }
            let trailing = Int(stream.avail_in) + (inputCount - inPos)
            guard trailing == 0 else { throw fail("\(trailing) bytes follow the end of the deflate stream") }
        }
    }

    private func preadBytes(_ offset: Int, _ count: Int, member m: Member) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            n = 0
            if count > 0 { try preadFully(UnsafeMutableRawPointer(buf.baseAddress!), offset, count, member: m) }
            n = count
        }
    }

    private func preadFully(_ buf: UnsafeMutableRawPointer, _ offset: Int, _ count: Int, member m: Member) throws {
        try file.withDescriptor { fd in try preadFully(fd, buf, offset, count, member: m) }
    }

    private func preadFully(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ offset: Int, _ count: Int, member m: Member) throws {
        var done = 0
        while done < count {
            let r = pread(fd, buf + done, count - done, off_t(offset + done))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else {
                throw CheckpointError(r == 0 ? "archive ends inside the member's data" : "cannot read: \(String(cString: strerror(errno)))",
                                      file: path, member: m.name, offset: offset + done)
            }
            done += r
        }
    }

    static func hex<T: BinaryInteger>(_ v: T) -> String {
        let s = String(UInt32(truncatingIfNeeded: v), radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}
