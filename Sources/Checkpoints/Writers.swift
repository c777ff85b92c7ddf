import TensorCore

/// Shared planning for the streaming writers (`SafetensorsWriter`, `HDF5Writer`): output dtypes, sizes and the
/// checks that must pass before the first byte is written.
enum WriterPlan {
    struct Item {
        let entry: TensorEntry
        /// The dtype written: `cast` for floating tensors when given, the entry's own dtype otherwise.
        let dtype: DType
        let byteCount: Int
    }

    /// The dtype a tensor of `dtype` is written as under `cast`: the cast applies to real floating-point tensors
    /// (float8 widens exactly to float32); complex, integer, bool and packed tensors keep their dtype.
    static func outputDType(_ dtype: DType, cast: DType?) -> DType { dtype.cast(to: cast) }

    /// Plans `sd` for writing to `file` in `format`: rejects duplicate or empty names and shapes whose size
    /// overflows; a tensor whose dtype `holds` refuses is an error naming it, or with `skipUnsupported` is left
    /// out and returned in `skipped`.
    static func make(_ sd: StateDict, cast: DType?, file: String, format: String, holds: (DType) -> Bool,
                     skipUnsupported: Bool) throws -> (items: [Item], skipped: [TensorEntry]) {
        var seen = Set<String>()
        var items: [Item] = []
        var skipped: [TensorEntry] = []
        items.reserveCapacity(sd.tensors.count)
        for t in sd.tensors {
            guard !t.name.isEmpty else { throw CheckpointError("a tensor has an empty name", file: file) }
            guard seen.insert(t.name).inserted else {
                throw CheckpointError("duplicate tensor name", file: file, key: t.name)
            }
            let dtype = outputDType(t.dtype, cast: cast)
            guard holds(dtype) else {
                if skipUnsupported { skipped.append(t); continue }
                throw CheckpointError("\(format) cannot hold \(dtype.rawValue) tensors (--skip-unsupported leaves such tensors out)",
                                      file: file, key: t.name)
            }
            guard let n = ShapeMath.byteCount(t.shape, dtype) else {
                throw CheckpointError("shape \(t.shape) of \(dtype.rawValue) overflows", file: file, key: t.name)
            }
            items.append(Item(entry: t, dtype: dtype, byteCount: n))
        }
        return (items, skipped)
    }

    /// Loads the tensor of `item`, checks it is what the entry promised, and casts it to the output dtype.
    static func load(_ item: Item, file: String) throws -> Tensor {
        let t = try CheckpointError.withContext(file: file) { try item.entry.load() }
        guard t.dtype == item.entry.dtype, t.shape == item.entry.shape else {
            throw CheckpointError("reader promised \(item.entry.dtype.rawValue) \(item.entry.shape) but loaded \(t.dtype.rawValue) \(t.shape)",
                                  file: file, key: item.entry.name)
        }
        let out = t.converted(to: item.dtype)
        guard out.byteCount == item.byteCount else {
            throw CheckpointError("tensor holds \(out.byteCount) bytes, expected \(item.byteCount)", file: file, key: item.entry.name)
        }
        return out
    }
}

/// Writes a tensor stored as chunks (`TensorEntry.chunks`) into its region of the output, one chunk at a time, so
/// memory holds at most one chunk: a row-block chunk whose bytes lie verbatim in its file is copied file-to-file
/// into place; any other chunk is loaded, cast to the output dtype, and written as the runs that are contiguous
/// in the whole tensor (positioned writes). The write position then moves past the region.
enum ChunkedWrite {
    static func write(_ item: WriterPlan.Item, to output: AtomicOutput) throws {
        guard let chunks = item.entry.chunks else { return }
        let entry = item.entry
        let base = output.bytesWritten
        let es = item.dtype.byteSize
        for c in chunks where !c.sizes.contains(0) {
            if item.dtype == entry.dtype, let span = c.entry.span, ChunkPlacement.isContiguous(shape: entry.shape, sizes: c.sizes) {
                var destination = 0
                ChunkPlacement.runs(shape: entry.shape, offsets: c.offsets, sizes: c.sizes, elementSize: es) { d, _, _ in destination = d }
                try output.write(span, at: base + destination)
                continue
            }
            let t = try c.entry.load()
            guard t.dtype == entry.dtype, t.shape == c.sizes else {
                throw CheckpointError("chunk at \(c.offsets) loaded as \(t.dtype.rawValue) \(t.shape), expected \(entry.dtype.rawValue) \(c.sizes) (\(c.entry.location))")
            }
            let out = t.converted(to: item.dtype)
            try out.bytes.withUnsafeBytes { src in
                try ChunkPlacement.runs(shape: entry.shape, offsets: c.offsets, sizes: c.sizes, elementSize: es) { d, s, n in
                    guard s + n <= src.count, d + n <= item.byteCount else {
                        throw CheckpointError("chunk at \(c.offsets) does not fit the tensor (\(c.entry.location))")
                    }
                    try output.write(UnsafeRawBufferPointer(rebasing: src[s..<(s + n)]), at: base + d)
                }
            }
        }
        try output.advance(to: base + item.byteCount)
    }
}
