import CZip
#if canImport(Glibc)
import Glibc
#endif

/// One member of a zip archive as the central directory declares it, after every cross-check in `ZipDirectory`.
package struct ZipEntry: Sendable, Equatable {
    package let name: String
    /// 0 (stored) or 8 (deflated); nothing else is accepted.
    package let method: Int
    package let flags: Int
    package let crc32: UInt32
    package let compressedSize: Int
    package let size: Int
    package let localHeaderOffset: Int
    /// Absolute offset of the member's (possibly compressed) bytes: after the local header, name and extra field.
    package let dataOffset: Int
    /// End of everything the member occupies: data plus its data descriptor, if any.
    package let recordEnd: Int

    package var isStored: Bool { method == 0 }
}

/// The one zip directory parser every path uses (tensor reads, zero-copy spans, sniffing, CRC checks): there is
/// no second reader whose answers could differ. It refuses archives that different zip readers would read
/// differently instead of picking one reading:
///
/// - more than one end-of-central-directory (EOCD) record that could be the real one, an EOCD whose comment
///   length disagrees with the file's end, trailing or leading bytes (the central directory must end where the
///   zip64 record or EOCD starts), multi-disk archives;
/// - zip64 records or extra fields that disagree with the 32-bit values they stand for;
/// - local headers whose name, method, flags, CRC or sizes disagree with the central directory, data descriptors
///   that disagree with it, unicode-path extra fields (0x7075) that name a different file, non-ASCII names
///   without the UTF-8 flag, names with NUL bytes, duplicate names;
/// - members that overlap each other or reach into the central directory; encrypted members; methods other
///   than stored and deflate.
///
/// Layout facts are from the PKWARE APPNOTE (sections 4.3.6–4.3.16, 4.5.3, 4.6.9).
package enum ZipDirectory {
    static let eocdSignature = 0x0605_4B50
    static let zip64LocatorSignature = 0x0706_4B50
    static let zip64RecordSignature = 0x0606_4B50
    static let centralSignature = 0x0201_4B50
    static let localSignature = 0x0403_4B50
    static let descriptorSignature = 0x0807_4B50

    /// Reads and checks the directory of the zip file at `path`.
    package static func read(path: String) throws -> [ZipEntry] {
        try read(WindowedReader(path: path))
    }

    /// Reads and checks the directory of a zip archive that occupies bytes `range` of the file at `path` (a
    /// `torch.save` payload inside a larger file). Offsets in the entries are relative to `range.lowerBound`;
    /// nothing outside the range is read.
    package static func read(path: String, range: Range<Int>) throws -> [ZipEntry] {
        try read(WindowedReader(path: path, range: range))
    }

    static func read(_ f: WindowedReader) throws -> [ZipEntry] {
        let path = f.path
        func fail(_ message: String, _ offset: Int? = nil, member: String? = nil) -> CheckpointError {
            CheckpointError("ambiguous or malformed zip archive: " + message, file: path, member: member, offset: offset)
        }
        func u16(_ o: Int) throws -> Int { Int(try f.bytes(o, 2).withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }.littleEndian) }
        func u32(_ o: Int) throws -> Int { Int(try f.bytes(o, 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.littleEndian) }
        func u64(_ o: Int) throws -> Int {
            let v = try f.bytes(o, 8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
            guard v <= UInt64(Int.max) else { throw fail("64-bit field \(v) is out of range", o) }
            return Int(v)
        }
        func add(_ a: Int, _ b: Int, _ at: Int) throws -> Int {
            let (s, o) = a.addingReportingOverflow(b)
            guard !o else { throw fail("offset arithmetic overflows", at) }
            return s
        }

        // 1. The EOCD: the last signature in the final 64 KiB + 22 bytes (where torch's and Python's readers look),
        // which must end exactly at the end of the file; no other signature there may also be a complete EOCD.
        guard f.size >= 22 else { throw CheckpointError("not a readable zip archive: \(f.size) bytes is too short for an end-of-central-directory record", file: path) }
        let lowest = max(0, f.size - 22 - 0xFFFF)
        // One read of the tail, scanned byte by byte from the end (a u32 read per position cost ~64 K calls per
        // archive, which dominated opening a Distributed Checkpoint's hundreds of small payload archives).
        var candidates: [Int] = []
        let tail = try f.bytes(lowest, f.size - lowest)
        // Each step jumps to the previous 'P' with memrchr (libc's vectorised search): byte-by-byte, the scan was a
        // quarter of the fuzzer's time per small archive under coverage instrumentation.
        tail.withUnsafeBytes { t in
            guard let base = t.baseAddress else { return }
            var searchable = t.count - 22 + 1   // a record starting at i needs i + 22 <= t.count
            while searchable > 0, let hit = weights_memrchr(base, 0x50, searchable) {
                let i = base.distance(to: UnsafeRawPointer(hit))
                if t[i + 1] == 0x4B, t[i + 2] == 0x05, t[i + 3] == 0x06 { candidates.append(lowest + i) }
                searchable = i
            }
        }
        guard let eocd = candidates.first else {
            throw CheckpointError("not a readable zip archive: no end-of-central-directory record", file: path)
        }
        let commentLength = try u16(eocd + 20)
        guard eocd + 22 + commentLength == f.size else {
            throw fail("the last end-of-central-directory record (byte \(eocd)) declares a \(commentLength)-byte comment but \(f.size - eocd - 22) bytes follow it", eocd)
        }
        for c in candidates.dropFirst() where c + 22 + (try u16(c + 20)) == f.size {
            throw fail("two end-of-central-directory records (bytes \(c) and \(eocd)); readers disagree on which one counts", c)
        }
        let disk = try u16(eocd + 4), cdDisk = try u16(eocd + 6)
        var entriesOnDisk = try u16(eocd + 8), entries = try u16(eocd + 10)
        var cdSize = try u32(eocd + 12), cdOffset = try u32(eocd + 16)
        guard disk == 0 || disk == 0xFFFF, cdDisk == 0 || cdDisk == 0xFFFF else { throw fail("multi-disk archives are not supported", eocd) }

        // 2. zip64: a locator right before the EOCD points at a zip64 record that must end at the locator.
        var cdEnd = eocd
        if eocd >= 20, try u32(eocd - 20) == zip64LocatorSignature {
            let locator = eocd - 20
            guard try u32(locator + 4) == 0, try u32(locator + 16) <= 1 else { throw fail("multi-disk zip64 locator", locator) }
            let record = try u64(locator + 8)
            guard record < locator, try u32(record) == zip64RecordSignature else {
                throw fail("zip64 locator points at byte \(record), which holds no zip64 end-of-central-directory record", locator)
            }
            let recordSize = try u64(record + 4)
            guard recordSize >= 44, try add(try add(record, 12, record), recordSize, record) == locator else {
                throw fail("zip64 end-of-central-directory record of \(recordSize) bytes does not end at its locator", record)
            }
            guard try u32(record + 16) == 0, try u32(record + 20) == 0 else { throw fail("multi-disk zip64 archive", record) }
            let e64OnDisk = try u64(record + 24), e64 = try u64(record + 32)
            let size64 = try u64(record + 40), offset64 = try u64(record + 48)
            func agree(_ small: Int, _ sentinel: Int, _ big: Int, _ what: String) throws {
                guard small == sentinel || small == big else {
                    throw fail("zip64 record says \(what) \(big) but the end-of-central-directory record says \(small)", record)
                }
            }
            try agree(entriesOnDisk, 0xFFFF, e64OnDisk, "entry count on disk")
            try agree(entries, 0xFFFF, e64, "entry count")
            try agree(cdSize, 0xFFFF_FFFF, size64, "central directory size")
            try agree(cdOffset, 0xFFFF_FFFF, offset64, "central directory offset")
            entriesOnDisk = e64OnDisk; entries = e64; cdSize = size64; cdOffset = offset64
            cdEnd = record
        } else if entries == 0xFFFF || entriesOnDisk == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            throw fail("end-of-central-directory record holds zip64 placeholders but there is no zip64 locator", eocd)
        }
        guard entriesOnDisk == entries else { throw fail("\(entriesOnDisk) entries on this disk but \(entries) in total", eocd) }
        guard try add(cdOffset, cdSize, eocd) == cdEnd else {
            throw fail("central directory at byte \(cdOffset) of \(cdSize) bytes does not end at byte \(cdEnd) where the end records start (data before or after the archive?)", eocd)
        }
        guard entries <= cdSize / 46 else { throw fail("\(entries) entries cannot fit in a \(cdSize)-byte central directory", eocd) }

        // 3. Central directory headers, each cross-checked with its local header.
        var out: [ZipEntry] = []
        out.reserveCapacity(entries)
        var names = Set<String>()
        var p = cdOffset
        for _ in 0..<entries {
            guard p + 46 <= cdEnd, try u32(p) == centralSignature else {
                throw fail("central directory entry \(out.count) at byte \(p) has no header signature", p)
            }
            let flags = try u16(p + 8), method = try u16(p + 10)
            let crc = try u32(p + 16)
            var compSize = try u32(p + 20), size = try u32(p + 24)
            let nameLen = try u16(p + 28), extraLen = try u16(p + 30), commentLen = try u16(p + 32)
            let startDisk = try u16(p + 34)
            var local = try u32(p + 42)
            let headerEnd = p + 46 + nameLen + extraLen + commentLen
            guard headerEnd <= cdEnd else { throw fail("central directory entry at byte \(p) runs past the directory's end", p) }
            let nameBytes = Array(try f.bytes(p + 46, nameLen))
            let name = try decodeName(nameBytes, flags: flags, at: p, fail: fail)
            func bad(_ message: String, _ at: Int? = nil) -> CheckpointError { fail(message, at ?? p, member: name) }

            guard flags & 0x0001 == 0, flags & 0x0040 == 0, flags & 0x2000 == 0 else {
                throw CheckpointError("member is encrypted", file: path, member: name, offset: p)
            }
            guard method == 0 || method == 8 else {
                throw CheckpointError("compression method \(method) is not supported (only stored and deflate)", file: path, member: name, offset: p)
            }

            // Extra fields: zip64 sizes / offset for 0xFFFFFFFF fields, unicode path that must repeat the name.
            let extra = try ExtraFields(f, at: p + 46 + nameLen, length: extraLen, name: name, fail: bad)
            if let z = extra.zip64 {
                var q = 0
                func next() throws -> Int {
                    guard q + 8 <= z.count else { throw bad("zip64 extra field is too short for the fields it must hold") }
                    let v = z[(z.startIndex + q)..<(z.startIndex + q + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
                    q += 8
                    guard v <= UInt64(Int.max) else { throw bad("zip64 value \(v) is out of range") }
                    return Int(v)
                }
                if size == 0xFFFF_FFFF { size = try next() }
                if compSize == 0xFFFF_FFFF { compSize = try next() }
                if local == 0xFFFF_FFFF { local = try next() }
            } else if size == 0xFFFF_FFFF || compSize == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                throw bad("a size or offset is 0xFFFFFFFF but the entry has no zip64 extra field")
            }
            guard startDisk == 0 || startDisk == 0xFFFF else { throw bad("member starts on disk \(startDisk)") }
            if method == 0 && compSize != size { throw bad("stored member declares \(compSize) stored bytes but a size of \(size)") }
            guard names.insert(name).inserted else { throw bad("two members have the same name") }

            // The local header must say the same thing.
            guard try add(local, 30, p) <= cdOffset, try u32(local) == localSignature else {
                throw bad("local header at byte \(local) is missing or inside the central directory", local)
            }
            let lFlags = try u16(local + 6), lMethod = try u16(local + 8)
            let lCRC = try u32(local + 14)
            var lComp = try u32(local + 18), lSize = try u32(local + 22)
            let lNameLen = try u16(local + 26), lExtraLen = try u16(local + 28)
            guard lNameLen == nameLen, Array(try f.bytes(local + 30, lNameLen)) == nameBytes else {
                let other = String(decoding: try f.bytes(local + 30, min(lNameLen, 200)), as: UTF8.self)
                throw bad("local header names '\(other)' but the central directory names '\(name)'", local)
            }
            guard lMethod == method else { throw bad("local header says compression method \(lMethod), central directory \(method)", local) }
            guard lFlags & 0x0809 == flags & 0x0809 else {
                throw bad("local header flags 0x\(String(lFlags, radix: 16)) disagree with the central directory's 0x\(String(flags, radix: 16))", local)
            }
            let lExtra = try ExtraFields(f, at: local + 30 + lNameLen, length: lExtraLen, name: name, fail: bad)
            if let z = lExtra.zip64, lSize == 0xFFFF_FFFF || lComp == 0xFFFF_FFFF {
                // In a local header the zip64 field holds both sizes (APPNOTE 4.5.3).
                guard z.count >= 16 else { throw bad("local zip64 extra field is too short", local) }
                let s64 = z[z.startIndex..<(z.startIndex + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
                let c64 = z[(z.startIndex + 8)..<(z.startIndex + 16)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
                guard s64 <= UInt64(Int.max), c64 <= UInt64(Int.max) else { throw bad("local zip64 sizes are out of range", local) }
                lSize = Int(s64); lComp = Int(c64)
            }
            let hasDescriptor = flags & 0x0008 != 0
            let localAgrees = lCRC == crc && lComp == compSize && lSize == size
            let localBlank = lCRC == 0 && lComp == 0 && lSize == 0
            guard localAgrees || (hasDescriptor && localBlank) else {
                throw bad("local header says crc \(hex(lCRC)), \(lComp) stored bytes, size \(lSize); the central directory says crc \(hex(crc)), \(compSize), \(size)", local)
            }
            let dataOffset = try add(try add(local, 30 + lNameLen, local), lExtraLen, local)
            let dataEnd = try add(dataOffset, compSize, local)
            guard dataEnd <= cdOffset else {
                throw bad("member data \(dataOffset)..<\(dataEnd) reaches past the start of the central directory (byte \(cdOffset))", dataOffset)
            }
            var recordEnd = dataEnd
            if hasDescriptor {
                guard let end = try descriptorEnd(at: dataEnd, limit: cdOffset, crc: crc, compSize: compSize, size: size,
                                                  read: { try u32($0) }, read64: { try u64($0) }) else {
                    throw bad("data descriptor after the member's data disagrees with the central directory (or is missing)", dataEnd)
                }
                recordEnd = end
            }
            out.append(ZipEntry(name: name, method: method, flags: flags, crc32: UInt32(crc), compressedSize: compSize, size: size,
                                localHeaderOffset: local, dataOffset: dataOffset, recordEnd: recordEnd))
            p = headerEnd
        }
        guard p == cdEnd else { throw fail("central directory holds \(cdEnd - p) bytes after its \(entries) declared entries", p) }

        // 4. Members may not share bytes (one member's data must not be another's header or data).
        let byStart = out.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.localHeaderOffset < a.recordEnd {
            throw fail("members '\(CheckpointError.printable(a.name))' (bytes \(a.localHeaderOffset)..<\(a.recordEnd)) and '\(CheckpointError.printable(b.name))' (from byte \(b.localHeaderOffset)) overlap",
                       b.localHeaderOffset, member: b.name)
        }
        return out
    }

    static func hex(_ v: Int) -> String { "0x" + String(v, radix: 16) }

    /// The member name: UTF-8 when flag bit 11 says so, else it must be ASCII (other readers would guess CP437 or
    /// UTF-8 and disagree); never with NUL bytes (C readers would cut the name there).
    static func decodeName(_ bytes: [UInt8], flags: Int, at p: Int, fail: (String, Int?, String?) -> CheckpointError) throws -> String {
        let shown = String(decoding: bytes.prefix(200), as: UTF8.self)
        guard !bytes.contains(0) else { throw fail("member name contains a NUL byte", p, shown) }
        if flags & 0x0800 != 0 {
            guard let s = String(validating: bytes, as: UTF8.self) else { throw fail("member name is flagged UTF-8 but is not valid UTF-8", p, shown) }
            return s
        }
        guard bytes.allSatisfy({ $0 < 0x80 }) else {
            throw fail("member name is not ASCII and not flagged UTF-8, so readers disagree on what it says", p, shown)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Where a data descriptor that matches the central directory ends: optional signature, CRC, then 4- or
    /// 8-byte sizes. nil if none of those forms matches.
    static func descriptorEnd(at o: Int, limit: Int, crc: Int, compSize: Int, size: Int,
                              read: (Int) throws -> Int, read64: (Int) throws -> Int) throws -> Int? {
        for signed in [true, false] {
            let start = signed ? o + 4 : o
            if signed { guard o + 4 <= limit, try read(o) == descriptorSignature else { continue } }
            guard start + 12 <= limit, try read(start) == crc else { continue }
            if try read(start + 4) == compSize, try read(start + 8) == size { return start + 12 }
            if start + 20 <= limit, try read64(start + 4) == compSize, try read64(start + 12) == size { return start + 20 }
        }
        return nil
    }

    /// The extra fields of one header: the zip64 field's payload and a check of the unicode-path field.
    struct ExtraFields {
        var zip64: ArraySlice<UInt8>?

        init(_ f: WindowedReader, at start: Int, length: Int, name: String, fail: (String, Int?) -> CheckpointError) throws {
            let bytes = Array(try f.bytes(start, length))
            var e = 0
            var seen = Set<Int>()
            while e < bytes.count {
                guard e + 4 <= bytes.count else { throw fail("extra field ends inside a record header", start + e) }
                let id = Int(bytes[e]) | Int(bytes[e + 1]) << 8, len = Int(bytes[e + 2]) | Int(bytes[e + 3]) << 8
                guard e + 4 + len <= bytes.count else { throw fail("extra field record 0x\(String(id, radix: 16)) runs past the extra field", start + e) }
                let payload = bytes[(e + 4)..<(e + 4 + len)]
                if id == 0x0001 || id == 0x7075 {
                    guard seen.insert(id).inserted else { throw fail("extra field record 0x\(String(id, radix: 16)) appears twice", start + e) }
                }
                if id == 0x0001 { zip64 = payload }
                if id == 0x7075 {
                    // Info-ZIP unicode path: version 1, CRC-32 of the header name, then the UTF-8 name.
                    let p = payload.startIndex
                    guard len >= 5, payload[p] == 1 else { throw fail("malformed unicode-path extra field", start + e) }
                    let text = String(decoding: payload[(p + 5)...], as: UTF8.self)
                    guard Array(payload[(p + 5)...]) == Array(name.utf8) else {
                        throw fail("unicode-path extra field names '\(CheckpointError.printable(text))' but the header names '\(CheckpointError.printable(name))'", start + e)
                    }
                }
                e += 4 + len
            }
        }
    }
}

/// Bounds-checked reads of a file through a 64 KiB window (one `pread` per miss): sequential scans hit the
/// window, scattered reads cost one small `pread` each, and nothing stays mapped.
final class WindowedReader {
    let path: String
    let size: Int
    /// Where offset 0 lies in the file: reads are confined to `[base, base + size)`.
    private let base: Int
    private let fd: Int32
    private var window: [UInt8] = []
    private var windowStart = 0
    private static let windowSize = 1 << 16

    init(path: String) throws {
        self.path = path
        (fd, size) = try InputFile.open(path)
        base = 0
    }

    /// A reader of bytes `range` of the file only; offsets are relative to the range's start.
    init(path: String, range: Range<Int>) throws {
        self.path = path
        let (fd, fileSize) = try InputFile.open(path)
        guard range.lowerBound >= 0, range.upperBound <= fileSize else {
            close(fd)
            throw CheckpointError("byte range \(range.lowerBound)..<\(range.upperBound) is outside the file (\(fileSize) bytes)", file: path, offset: range.lowerBound)
        }
        self.fd = fd
        base = range.lowerBound
        size = range.count
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
                    let r = pread(fd, buf.baseAddress! + n, want - n, off_t(base + start + n))
                    if r < 0 && errno == EINTR { continue }
                    guard r > 0 else {
                        throw CheckpointError("cannot read: \(r < 0 ? String(cString: strerror(errno)) : "file ends early")", file: path, offset: base + start + n)
                    }
                    n += r
                }
            }
            windowStart = start
        }
        return window[(offset - windowStart)..<(end - windowStart)]
    }
}
