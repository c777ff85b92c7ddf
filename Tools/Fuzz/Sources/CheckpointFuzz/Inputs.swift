// How a fuzz input becomes a file. Structured modes keep the parts of a format that the fuzzer would otherwise
// have to rediscover after every mutation (length prefixes, zip CRCs and offsets, fixed header pickles) correct,
// so that mutations reach the parsers behind them. Tools/Fuzz/seeds.py writes seed corpora in each mode's encoding.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The input encodings (FUZZ_MODE).
enum FuzzMode: String, CaseIterable {
    /// The input is the file. Format sniffing decides which reader runs (all formats, including HDF5).
    case raw
    /// The input is a PyTorch object pickle (data.pkl). It is stored as `archive/data.pkl` of a zip checkpoint
    /// whose storages `archive/data/0` … `archive/data/23` hold 640 bytes each (the fixtures use up to 23 storages
    /// of at most 576 bytes), so persistent ids, views and loads work.
    case pickle
    /// The input is everything after the three header pickles of a legacy `torch.save` file (magic number, protocol
    /// 1001, sys_info): the object pickle, the storage key list and the storage records.
    case legacy
    /// The input is a list of zip members, each `[name length: u8][name][data length: u16 LE][data]`, written as a
    /// stored zip archive (PyTorch zip checkpoints and .npz).
    case zip
    /// The input is a safetensors JSON header, then optionally a 0x00 byte and the data area. The 8-byte header
    /// length is computed.
    case safetensors
    /// The input is a .npy header dict literal, then optionally a 0x00 byte and the array data. Magic, version 1.0
    /// and the header length are added.
    case npy
    /// The input is an HDF5 file whose first 8 bytes are replaced by the HDF5 signature; it goes to
    /// `HDF5Reader.read` directly (no sniffing) and every dataset is loaded, so mutations reach libhdf5's data read
    /// (chunk index, filters, type conversion) and the checks in front of it (HDF5Checks.swift), which run in the
    /// reader's child process.
    case hdf5
    /// The input is a zip archive as it is, except that its first four bytes are replaced by the local-header
    /// signature (so sniffing hands it to the zip reader): mutations reach the zip directory parser
    /// (ZipDirectory.swift: EOCD search, zip64 records, central and local headers, extra fields, descriptors,
    /// overlap checks), CRC checks and inflation, and every member that loads is compared with its zero-copy span.
    case zipdir
    /// The input is the `model.weights.h5` of a Keras `.keras` archive (first 8 bytes replaced by the HDF5
    /// signature), stored in a fixed archive with `config.json` and `metadata.json` (KerasFixed): the archive
    /// reader, the in-memory HDF5 image, and every dataset loaded and round-tripped (spans into the archive).
    case keras
    /// The input is a Hugging Face index JSON, written as `model.safetensors.index.json` into a directory of fixed
    /// shards (IndexModeFiles: the `shards/` fixtures, plus a subfolder, links inside and outside the folder, a FIFO,
    /// a directory and a link to /dev/zero under shard-like names) and opened by that path.
    case index
    /// The input is one selector byte, then a PyTorch Distributed Checkpoint `.metadata` pickle; it is written into
    /// the copy of the `dcp/` fixture the selector picks (its `.distcp` files, plus the same hostile names as
    /// `index`), and that directory is opened.
    case dcp

    func file(for input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        switch self {
        case .raw:
            return Array(input)
        case .pickle:
            var members = PickleModeStorages.members
            members.insert(ZipWriter.Member(name: "archive/data.pkl", data: Array(input)), at: 0)
            return ZipWriter.archive(members)
        case .legacy:
            return LegacyHeader.bytes + Array(input)
        case .zip:
            return ZipWriter.archive(Self.members(input))
        case .safetensors:
            let (header, data) = Self.split(input)
            var out: [UInt8] = []
            out.reserveCapacity(8 + input.count)
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: header)
            out.append(contentsOf: data)
            return out
        case .npy:
            let (header, data) = Self.split(input)
            let h = header.prefix(0xFFFF)
            var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
            out.append(contentsOf: h)
            out.append(contentsOf: data)
            return out
        case .hdf5:
            return [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + Array(input.dropFirst(8))
        case .zipdir:
            return [0x50, 0x4B, 0x03, 0x04] + Array(input.dropFirst(4))
        case .keras:
            let h5 = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + Array(input.dropFirst(8))
            return ZipWriter.archive(KerasFixed.before + [ZipWriter.Member(name: "model.weights.h5", data: h5)])
        case .index:
            return Array(input)
        case .dcp:
            return Array(input.dropFirst())
        }
    }

    /// Bytes before the first 0x00, and the bytes after it (empty if there is none).
    static func split(_ input: UnsafeBufferPointer<UInt8>) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        let all = Array(input)
        guard let nul = all.firstIndex(of: 0) else { return (all[...], []) }
        return (all[..<nul], all[(nul + 1)...])
    }

    /// Decodes the zip mode's member list; a short tail is taken as far as it goes.
    static func members(_ input: UnsafeBufferPointer<UInt8>) -> [ZipWriter.Member] {
        var out: [ZipWriter.Member] = []
        var i = 0
        func take(_ n: Int) -> ArraySlice<UInt8> {
            let end = min(input.count, i + n)
            defer { i = end }
            return Array(input[i..<end])[...]
        }
        while i < input.count, out.count < 64 {
            let nameLength = Int(input[i]); i += 1
            let name = String(decoding: take(nameLength), as: UTF8.self)
            let lengthBytes = take(2)
            let dataLength = lengthBytes.count == 2 ? Int(lengthBytes.first!) | Int(lengthBytes.last!) << 8 : 0
            out.append(ZipWriter.Member(name: name, data: Array(take(dataLength))))
        }
        return out
    }
}

/// Where the structured file goes and what is opened: the scratch file for most modes, the index inside the
/// shard folder for `index`, the selected checkpoint directory for `dcp`.
extension FuzzMode {
    func place(_ file: [UInt8], input: UnsafeBufferPointer<UInt8>) -> String {
        switch self {
        case .index:
            writeFile(file, to: IndexModeFiles.indexPath)
            return IndexModeFiles.indexPath
        case .dcp:
            let dirs = DCPModeFiles.directories
            let dir = dirs[Int(input.first ?? 0) % dirs.count]
            writeFile(file, to: dir + "/.metadata")
            return dir
        default:
            writeFile(file, to: scratchPath)
            return scratchPath
        }
    }
}

/// The members around the keras mode's weights.
enum KerasFixed {
    static let before = [
        ZipWriter.Member(name: "metadata.json", data: Array(#"{"keras_version": "3.9.0", "date_saved": "2026-01-01@00:00:00"}"#.utf8)),
        ZipWriter.Member(name: "config.json", data: Array(#"{"module": "keras", "class_name": "Sequential", "config": {}}"#.utf8)),
    ]
}

/// The repository's test fixtures (this file is Tools/Fuzz/Sources/CheckpointFuzz/Inputs.swift), or FUZZ_FIXTURES.
let fixturesDirectory: String = {
    if let v = getenv("FUZZ_FIXTURES") { return String(cString: v) }
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(5)
    return parts.joined(separator: "/") + "/Tests/CheckpointsTests/Fixtures"
}()

/// A per-process folder under TMPDIR, removed at exit.
func scratchFolder(_ name: String) -> String {
    let dir = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/weights-fuzz-\(getpid())-\(name)"
    _ = system("rm -rf '\(dir)'")
    guard mkdir(dir, 0o700) == 0 else {
        say("CheckpointFuzz: cannot create \(dir): \(String(cString: strerror(errno)))\n")
        exit(70)
    }
    return dir
}

/// Copies the regular files of `from` (not `.json` / `.txt` ones) into `to`, names prefixed by `prefix`.
func copyFixtures(from: String, to: String, prefix: String = "", keep: (String) -> Bool = { _ in true }) {
    guard let d = opendir(from) else {
        say("CheckpointFuzz: cannot read the fixtures in \(from) (set FUZZ_FIXTURES)\n")
        exit(70)
    }
    defer { closedir(d) }
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard name != ".", name != "..", keep(name) else { continue }
        var st = stat()
        guard stat(from + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
        let fd = open(from + "/" + name, O_RDONLY)
        guard fd >= 0 else { continue }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        close(fd)
        if n == bytes.count { writeFile(bytes, to: to + "/" + prefix + name) }
    }
}

/// Hostile neighbours under checkpoint-like names: a subfolder holding a copy of `sample`, a link to it inside the
/// folder, a link to a file outside the folder, a FIFO, a directory and a link to /dev/zero.
func addHostileNeighbours(_ dir: String, sample: String, suffix: String) {
    mkdir(dir + "/sub", 0o700)
    copyFixtures(from: dir, to: dir + "/sub", keep: { $0 == sample })
    symlink(sample, dir + "/link-in" + suffix)
    writeFile(Array("outside the checkpoint folder".utf8), to: dir + ".outside")
    symlink(dir + ".outside", dir + "/link-out" + suffix)
    symlink("../" + (dir.split(separator: "/").last.map(String.init) ?? "") + ".outside", dir + "/link-up" + suffix)
    mkfifo(dir + "/fifo" + suffix, 0o600)
    mkdir(dir + "/dir" + suffix, 0o700)
    symlink("/dev/zero", dir + "/zero" + suffix)
}

/// The index mode's shard folder: the `shards/st` and `shards/bin` fixtures as they are, the `shards/legacy` ones
/// prefixed `legacy-` (seeds.py rewrites that index to match), and the hostile neighbours.
enum IndexModeFiles {
    static let directory: String = {
        let dir = scratchFolder("index")
        for sub in ["st", "bin"] { copyFixtures(from: fixturesDirectory + "/shards/" + sub, to: dir) }
        copyFixtures(from: fixturesDirectory + "/shards/legacy", to: dir, prefix: "legacy-")
        addHostileNeighbours(dir, sample: "model-00001-of-00004.safetensors", suffix: ".safetensors")
        atexit { _ = system("rm -rf '\(IndexModeFiles.directory)' '\(IndexModeFiles.directory).outside'") }
        return dir
    }()
    static let indexPath = directory + "/model.safetensors.index.json"
}

/// The dcp mode's checkpoint folders: one copy of each `dcp/<name>` fixture (sorted by name, as seeds.py numbers
/// them), with the hostile neighbours.
enum DCPModeFiles {
    static let directories: [String] = {
        let root = fixturesDirectory + "/dcp"
        guard let d = opendir(root) else {
            say("CheckpointFuzz: cannot read \(root) (set FUZZ_FIXTURES)\n")
            exit(70)
        }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if !name.hasPrefix("."), access(root + "/" + name + "/.metadata", R_OK) == 0 { names.append(name) }
        }
        closedir(d)
        names.sort()
        guard !names.isEmpty else { say("CheckpointFuzz: no DCP fixtures in \(root)\n"); exit(70) }
        let dirs = names.map { name -> String in
            let dir = DCPModeFiles.top + "/" + name
            mkdir(dir, 0o700)
            copyFixtures(from: root + "/" + name, to: dir, keep: { $0.hasSuffix(".distcp") })
            addHostileNeighbours(dir, sample: "__0_0.distcp", suffix: ".distcp")
            return dir
        }
        atexit { _ = system("rm -rf '\(DCPModeFiles.top)'") }
        return dirs
    }()
    static let top = scratchFolder("dcp")
}

/// The fixed storages of the pickle mode: keys "0" … "23", 640 bytes each, bytes that make every dtype's values vary
/// (including NaNs, infinities and odd bool bytes).
enum PickleModeStorages {
    static let members: [ZipWriter.Member] = {
        var ms = [ZipWriter.Member(name: "archive/byteorder", data: Array("little".utf8))]
        for k in 0..<24 {
            let data = (0..<640).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ (k &* 29) ^ ($0 >> 3)) }
            ms.append(ZipWriter.Member(name: "archive/data/\(k)", data: data, crc: CRC32.of(data)))
        }
        ms.append(ZipWriter.Member(name: "archive/version", data: Array("3\n".utf8)))
        return ms
    }()
}

/// The three header pickles of a legacy `torch.save` file.
enum LegacyHeader {
    static let bytes: [UInt8] =
        // PROTO 2, LONG1 10 bytes 0x1950a86a20f9469cfc6c, STOP
        [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        // PROTO 2, BININT2 1001, STOP
        + [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]
        // PROTO 2, EMPTY_DICT, STOP (sys_info: only its being a dict is checked)
        + [0x80, 0x02, 0x7D, 0x2E]
}

/// Writes stored (uncompressed) zip archives with correct CRCs, local headers and central directory.
enum ZipWriter {
    struct Member {
        var name: String
        var data: [UInt8]
        /// Precomputed CRC-32 of `data` (fixed members), or nil to compute it.
        var crc: UInt32? = nil
    }

    static func archive(_ members: [Member]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        let names = members.reduce(0) { $0 + $1.name.utf8.count }
        out.reserveCapacity(members.reduce(0) { $0 + $1.data.count } + 2 * names + 76 * members.count + 22)
        central.reserveCapacity(names + 46 * members.count)
        func u16(_ v: Int, _ b: inout [UInt8]) { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { b.append(contentsOf: $0) } }
        func u32(_ v: Int, _ b: inout [UInt8]) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { b.append(contentsOf: $0) } }
        for m in members {
            let name = Array(m.name.utf8.prefix(0xFFFF))
            let crc = Int(m.crc ?? CRC32.of(m.data))
            let offset = out.count
            u32(0x0403_4B50, &out); u16(20, &out); u16(0, &out); u16(0, &out)  // signature, version, flags, method
            u16(0, &out); u16(0x21, &out)                                       // time, date
            u32(crc, &out); u32(m.data.count, &out); u32(m.data.count, &out)
            u16(name.count, &out); u16(0, &out)
            out += name
            out += m.data

            u32(0x0201_4B50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central)
            u16(0, &central); u16(0x21, &central)
            u32(crc, &central); u32(m.data.count, &central); u32(m.data.count, &central)
            u16(name.count, &central); u16(0, &central); u16(0, &central)       // name, extra, comment lengths
            u16(0, &central); u16(0, &central); u32(0, &central)                // disk, internal, external attributes
            u32(offset, &central)
            central += name
        }
        let cdOffset = out.count
        out += central
        u32(0x0605_4B50, &out); u16(0, &out); u16(0, &out)
        u16(members.count, &out); u16(members.count, &out)
        u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
        return out
    }
}

enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func of(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        bytes.withUnsafeBufferPointer { b in
            table.withUnsafeBufferPointer { t in
                for x in b { c = t[Int((c ^ UInt32(x)) & 0xFF)] ^ (c >> 8) }
            }
        }
        return c ^ 0xFFFF_FFFF
    }
}
