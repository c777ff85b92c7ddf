/// What a file's first bytes say it is (`Checkpoint.sniff`), and where libhdf5 would find an HDF5 superblock.
extension Checkpoint {
    /// A format as claimed by the bytes at offset 0. The signatures are mutually exclusive: zip `PK\3\4` / `PK\5\6`,
    /// `\x93NUMPY`, the HDF5 signature, a pickle (`\x80` PROTO) whose first object is torch's legacy magic number
    /// (or that number as protocol-0 text), a little-endian u64 length followed by `{` (safetensors), and last any
    /// other pickle (read as a legacy file, for its error message).
    enum HeadClaim: Equatable {
        case zip, npy, hdf5, legacyPickle, safetensors, pickle

        /// The checkpoint format (a zip is told apart by its member names).
        func format(path: String) throws -> CheckpointFormat {
            switch self {
            case .zip:
                let zip = try ZipArchive(path: path)
                let torch = zip.members.first { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
                let keras = KerasArchiveReader.isKerasArchive(Set(zip.members.map(\.name)))
                if let torch, keras {
                    throw CheckpointError("ambiguous zip archive: it holds a PyTorch data.pkl and Keras records (config.json, metadata.json, "
                                          + "\(KerasArchiveReader.weightsMember)); refused", file: path, member: torch.name)
                }
                if torch != nil { return .pytorchZip }
                if keras { return .keras }
                if !zip.members.isEmpty && zip.members.allSatisfy({ $0.name.hasSuffix(".npy") }) { return .npz }
                throw CheckpointError("zip archive holds neither a PyTorch data.pkl, a Keras \(KerasArchiveReader.weightsMember) nor only .npy members", file: path)
            case .npy: return .npy
            case .hdf5: return .hdf5
            case .legacyPickle, .pickle: return .pytorchLegacy
            case .safetensors: return .safetensors
            }
        }
    }

    static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    static func starts(_ b: UnsafeRawBufferPointer, _ magic: [UInt8], at offset: Int = 0) -> Bool {
        guard offset >= 0, b.count >= magic.count, offset <= b.count - magic.count else { return false }
        for (i, m) in magic.enumerated() where b[offset + i] != m { return false }
        return true
    }

    static func headClaim(_ b: UnsafeRawBufferPointer) -> HeadClaim? {
        if starts(b, [0x50, 0x4B, 0x03, 0x04]) || starts(b, [0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts(b, hdf5Signature) { return .hdf5 }
        if starts(b, [0x93] + Array("NUMPY".utf8)) { return .npy }
        // Legacy torch.save: a pickle (PROTO opcode 0x80) whose first object is the magic number 0x1950a86a20f9469cfc6c (LONG1).
        if starts(b, [0x80]) && b.count >= 3 && b[2] == 0x8A { return .legacyPickle }
        // ... or, written with pickle protocol 0 or 1, that number as text.
        if starts(b, Array("L119547037146038801333356".utf8)) { return .legacyPickle }
        // safetensors: u64 header length, then a JSON object.
        if b.count >= 9 {
            let n = b.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
            if b[8] == UInt8(ascii: "{") && n >= 2 { return .safetensors }
        }
        if starts(b, [0x80]) { return .pickle }
        return nil
    }

    /// The first offset among 0, 512, 1024, 2048, … holding the HDF5 signature (where libhdf5 looks), or nil.
    static func hdf5SignatureOffset(_ b: UnsafeRawBufferPointer) -> Int? {
        var off = 0
        while off <= b.count - 8 {
            if starts(b, hdf5Signature, at: off) { return off }
            let (next, o) = (off == 0 ? 256 : off).multipliedReportingOverflow(by: 2)
            if o { break }
            off = next
        }
        return nil
    }
}

extension HDF5Reader {
    /// Refuses an HDF5 superblock behind a user block whose first bytes claim another format (a polyglot): libhdf5
    /// would read the HDF5 part while every other tool reads the other format.
    static func requireSuperblockAtStart(path: String) throws {
        guard let file = try? MappedFile(path: path) else { return } // the HDF5 open says why
        let b = file.bytes
        guard let at = Checkpoint.hdf5SignatureOffset(b), at > 0, let claim = Checkpoint.headClaim(b) else { return }
        let what: String
        switch claim {
        case .zip: what = "a zip archive"
        case .npy: what = "a .npy file"
        case .hdf5: return
        case .legacyPickle, .pickle: what = "a pickle (legacy PyTorch file)"
        case .safetensors: what = "a safetensors file"
        }
        throw CheckpointError("polyglot: the file starts as \(what) and holds an HDF5 superblock at byte \(at); not read as HDF5 (an HDF5 superblock is read at byte 0, or after a user block that is no other format)", file: path, offset: at)
    }
}
