import Foundation

/// Entry point of the readers: sniffs the format from the file's content (never its name) and reads it. A
/// sharded checkpoint is read as one: its index file, or the directory holding it (`ShardedCheckpoint`).
public enum Checkpoint {
    /// Reads the table of contents of `path` (a file, a sharded checkpoint's index or its directory). Tensor data
    /// is read lazily by `TensorEntry.load()`.
    /// `options` holds the CRC and output-size checks (see `ReadOptions`).
    public static func open(_ path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let faults = MappingGuard.faultCount
        // The file shrank while mapped: what was read may be zeros, so that is the error, whatever else failed.
        let sd: StateDict
        do { sd = try openUnchecked(path, options: options) } catch {
            try MappingGuard.check(since: faults)
            throw error
        }
        try MappingGuard.check(since: faults)
        return sd
    }

    private static func openUnchecked(_ path: String, options: ReadOptions) throws -> StateDict {
        // A PyTorch Distributed Checkpoint: a directory holding `.metadata`, or that file itself.
        if let directory = DistributedCheckpointReader.directory(of: path) {
            return try CheckpointError.withContext(file: path) {
                let (sd, inputBytes) = try DistributedCheckpointReader.read(directory: directory, path: path, options: options)
                try options.checkOutputSize(sd, fileSize: inputBytes)
                return sd
            }
        }
        if isDirectory(path) { return try openDirectory(path, options: options) }
        if ShardedCheckpoint.isIndex(path) { return try ShardedCheckpoint.read(index: path, options: options) }
        let format = try sniff(path)
        return try CheckpointError.withContext(file: path) {
            let sd = try read(format, path: path, options: options)
            try options.checkOutputSize(sd, fileSize: fileSize(path))
            return sd
        }
    }

    /// A directory is read by what it holds: a Hugging Face index (`*.index.json`, exactly one) and its shards.
    static func openDirectory(_ path: String, options: ReadOptions) throws -> StateDict {
        // Other directory layouts are told apart here, before the index search.
        let indexes = try ShardedCheckpoint.indexes(inDirectory: path)
        guard indexes.count == 1, let index = indexes.first else {
            if indexes.isEmpty {
                throw CheckpointError("is a directory holding no checkpoint index (*.index.json); give a checkpoint file or a sharded checkpoint's folder", file: path)
            }
            let names = indexes.prefix(8).map { "'\(PathText.lastComponent($0))'" }.joined(separator: ", ")
            throw CheckpointError("directory holds \(indexes.count) checkpoint indexes (\(names)\(indexes.count > 8 ? ", …" : "")); give the index file to read", file: path)
        }
        return try ShardedCheckpoint.read(index: index, options: options)
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads `path` and, if `key` is given, keeps only the subtree under it.
    public static func open(_ path: String, key: String?, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let sd = try open(path, options: options)
        guard let key, !key.isEmpty else { return sd }
        return try sd.subtree(key)
    }

    /// Identifies the format from the first bytes (and, for zips, the member names).
    ///
    /// Polyglots: libhdf5 finds an HDF5 superblock at byte 0, 512, 1024, 2048, … (the bytes before it are a "user
    /// block"), so one file can be a valid safetensors, `.npy`, legacy `.pth` or zip file and a valid HDF5 file at
    /// once. A file whose first bytes claim another format is read as that format; if it also holds an HDF5
    /// superblock further on, it must then read as that format, or it is refused as ambiguous. An HDF5 superblock
    /// after a user block is accepted only when the first bytes claim no other format (see `headClaim`), and
    /// `HDF5Reader` refuses the other cases itself.
    public static func sniff(_ path: String) throws -> CheckpointFormat {
        let file = try MappedFile(path: path)
        let b = file.bytes
        guard b.count > 0 else { throw CheckpointError("file is empty", file: path) }
        let claim = headClaim(b)
        if claim == .hdf5 { return .hdf5 }
        let superblock = hdf5SignatureOffset(b)
        guard let claim else {
            if superblock != nil { return .hdf5 }
            throw CheckpointError("unrecognised format (not a PyTorch zip or legacy pickle, safetensors, HDF5, .npy, .npz or .keras); first bytes: \(b.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " "))", file: path, offset: 0)
        }
        let format = try claim.format(path: path)
        if let superblock {
            // Both readings are possible: the file must really be what its first bytes say.
            do {
                _ = try read(format, path: path)
            } catch let e as CheckpointError {
                throw CheckpointError("ambiguous file (a polyglot?): it starts as \(format.rawValue) but does not read as one (\(e.message)), and holds an HDF5 superblock at byte \(superblock); refused", file: path)
            }
        }
        return format
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    static func read(_ format: CheckpointFormat, path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        switch format {
        case .pytorchZip: return try PyTorchZipReader.read(path: path, options: options)
        case .pytorchLegacy: return try PyTorchLegacyReader.read(path: path)
        case .safetensors: return try SafetensorsReader.read(path: path)
        case .hdf5: return try HDF5Reader.read(path: path)
        case .npy: return try NumpyReader.readNPY(path: path)
        case .npz: return try NumpyReader.readNPZ(path: path, options: options)
        case .keras: return try KerasArchiveReader.read(path: path, options: options)
        case .dcp:
            let directory = DistributedCheckpointReader.directory(of: path) ?? path
            return try DistributedCheckpointReader.read(directory: directory, path: path, options: options).0
        }
    }
}

import Foundation
