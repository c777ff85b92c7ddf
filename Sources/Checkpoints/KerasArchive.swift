/// Reads Keras 3 `.keras` archives (`model.save("x.keras")`): a zip holding `config.json`, `metadata.json` and the
/// weights as `model.weights.h5` (Keras writes it stored; any zip tool may deflate it), plus `assets/…` for layers
/// with files of their own. The weights come out exactly as the `.weights.h5` reader names them
/// (`HDF5Keras.swift`: `layers/<a>/layers/<b>/vars/<i>` → `a.b.i`); `config.json` and `metadata.json` become the
/// metadata strings `keras_config` and `keras_metadata` (up to `maxJSONBytes` each, else a note says how large it
/// was). Nothing is extracted to disk: the inner HDF5 file is opened by libhdf5 as an in-memory image, in the HDF5
/// child process with its time and memory limits (`H5Isolation`), and every HDF5 check applies (external storage,
/// virtual datasets, external links, chunk decoding). A stored member is read in place from the archive's mapping
/// (its CRC-32 checked first), and contiguous datasets are copied file-to-file from the archive by the writers; a
/// deflated member is inflated into memory under the zip reader's bomb limits and the output cap (`ReadOptions`).
///
/// Refused, each naming the member: `model.weights.npz` (Keras's `weights_format="npz"`, a nested archive of pickled
/// dicts), an archive with no weights member, and one that also holds a PyTorch `data.pkl` (ambiguous).
enum KerasArchiveReader {
    static let weightsMember = "model.weights.h5"
    static let npzWeightsMember = "model.weights.npz"
    static let maxJSONBytes = 16 << 20

    /// Whether a zip's member names make it a `.keras` archive: the weights member, or Keras's two JSON records.
    static func isKerasArchive(_ names: Set<String>) -> Bool {
        names.contains(weightsMember) || names.contains(npzWeightsMember)
            || (names.contains("config.json") && names.contains("metadata.json"))
    }

    static func read(path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let zip = try ZipArchive(path: path, verifyCRC: options.verifyCRC)
        guard let weights = zip.member(named: weightsMember) else {
            if zip.member(named: npzWeightsMember) != nil {
                throw CheckpointError("Keras archive keeps its weights as model.weights.npz (weights_format=\"npz\"), which is not read; "
                                      + "save with the default weights_format=\"h5\"", file: path, member: npzWeightsMember)
            }
            throw CheckpointError("Keras archive (config.json, metadata.json) holds no \(weightsMember)", file: path)
        }
        let limit = options.outputLimit(fileSize: Checkpoint.fileSize(path))
        guard weights.size <= limit else {
            throw CheckpointError("member of \(weights.size) bytes exceeds the \(limit)-byte output cap (--max-output-bytes)", file: path, member: weights.name)
        }
        let image: H5Image
        let spans: (file: SourceFile, base: Int)?
        if weights.isStored {
            // Read in place; the CRC is checked first (libhdf5 would otherwise read altered bytes without a word).
            try zip.checkCRC(weights)
            image = try H5Image(member: weights.name, mapping: MappedFile(path: path), offset: weights.dataOffset, count: weights.size)
            spans = zip.span(weights, offset: 0, count: weights.size).map { (file: $0.file, base: $0.offset) }
        } else {
            // Inflated straight into the image's buffer (not through the archive's cache: one copy in memory).
            image = try H5Image(member: weights.name, byteCount: weights.size) { try zip.inflate(weights, into: $0) }
            spans = nil
        }
        var sd = try HDF5Reader.read(H5Source(path: path, image: image), format: .keras, spans: spans)
        for (member, name) in [("config.json", "keras_config"), ("metadata.json", "keras_metadata")] {
            guard let m = zip.member(named: member) else { continue }
            let value: MetaValue
            if m.size <= maxJSONBytes {
                value = .string(String(decoding: try zip.read(m), as: UTF8.self))
            } else {
                value = .string("<\(member) of \(m.size) bytes; not kept (limit \(maxJSONBytes))>")
            }
            sd.metadata.append(MetadataEntry(name: name, value: value))
        }
        return sd
    }
}
