/// Entry point of the readers: sniffs the format from the file's content (never its name) and reads it.
public enum Checkpoint {
    /// Reads the table of contents of `path`. Tensor data is read lazily by `TensorEntry.load()`.
    /// `options` holds the CRC and output-size checks (see `ReadOptions`).
    public static func open(_ path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let format = try sniff(path)
        return try CheckpointError.withContext(file: path) {
            let sd: StateDict
            switch format {
            case .pytorchZip: sd = try PyTorchZipReader.read(path: path, options: options)
            case .pytorchLegacy: sd = try PyTorchLegacyReader.read(path: path)
            case .safetensors: sd = try SafetensorsReader.read(path: path)
            case .hdf5: sd = try HDF5Reader.read(path: path)
            case .npy: sd = try NumpyReader.readNPY(path: path)
            case .npz: sd = try NumpyReader.readNPZ(path: path, options: options)
            }
            try options.checkOutputSize(sd, fileSize: fileSize(path))
            return sd
        }
    }

    /// Reads `path` and, if `key` is given, keeps only the subtree under it.
    public static func open(_ path: String, key: String?, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let sd = try open(path, options: options)
        guard let key, !key.isEmpty else { return sd }
        return try sd.subtree(key)
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Identifies the format from the first bytes (and, for zips, the member names).
    public static func sniff(_ path: String) throws -> CheckpointFormat {
        let file = try MappedFile(path: path)
        let b = file.bytes
        guard b.count > 0 else { throw CheckpointError("file is empty", file: path) }
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            guard b.count >= offset + magic.count else { return false }
            for (i, m) in magic.enumerated() where b[offset + i] != m { return false }
            return true
        }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) {
            let zip = try ZipArchive(path: path)
            if zip.members.contains(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) { return .pytorchZip }
            if !zip.members.isEmpty && zip.members.allSatisfy({ $0.name.hasSuffix(".npy") }) { return .npz }
            throw CheckpointError("zip archive holds neither a PyTorch data.pkl nor only .npy members", file: path)
        }
        // HDF5: signature at 0 or at a user-block offset 512, 1024, 2048, ...
        let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var off = 0
        while off + 8 <= b.count {
            if starts(hdf5, at: off) { return .hdf5 }
            off = off == 0 ? 512 : off * 2
        }
        if starts([0x93] + Array("NUMPY".utf8)) { return .npy }
        // Legacy torch.save: a pickle (PROTO opcode 0x80) whose first object is the magic number 0x1950a86a20f9469cfc6c (LONG1).
        if starts([0x80]) && b.count >= 3 && b[2] == 0x8A { return .pytorchLegacy }
        // ... or, written with pickle protocol 0 or 1, that number as text.
        if starts(Array("L119547037146038801333356".utf8)) { return .pytorchLegacy }
        // safetensors: u64 header length, then a JSON object.
        if b.count >= 9 {
            let n = b.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
            if b[8] == UInt8(ascii: "{") && n >= 2 { return .safetensors }
        }
        if starts([0x80]) { return .pytorchLegacy }
        throw CheckpointError("unrecognised format (not a PyTorch zip or legacy pickle, safetensors, HDF5, .npy or .npz); first bytes: \(b.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " "))", file: path, offset: 0)
    }
}

import Foundation
