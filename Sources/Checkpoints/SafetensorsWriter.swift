import TensorCore

/// safetensors writer. The header lists the tensors in the state dict's order with contiguous `data_offsets`,
/// `__metadata__` (keys sorted) first, and is padded with spaces so that the data area starts on an 8-byte
/// boundary. Tensors are then loaded, cast and written one at a time, so memory stays at about one tensor.
public enum SafetensorsWriter {
    /// Streams the tensors of `sd` (floating tensors cast to `dtype` when given) into `output` as safetensors,
    /// with `metadata` as the header's `__metadata__`. `progress` receives the number of tensor bytes written so far.
    /// Tensors of a dtype safetensors has no code for (complex128) are an error naming the first, or, with
    /// `skipUnsupported`, left out and returned.
    @discardableResult
    public static func write(_ sd: StateDict, to output: AtomicOutput, dtype: DType?, metadata: [String: String],
                             skipUnsupported: Bool = false, progress: ((Int) -> Void)? = nil) throws -> [TensorEntry] {
        try write(sd, to: output, dtype: dtype, metadata: metadata, headerLimit: SafetensorsReader.maxHeaderBytes,
                  skipUnsupported: skipUnsupported, progress: progress)
    }

    /// Whether safetensors holds tensors of `dtype` (all but complex128).
    public static func holds(_ dtype: DType) -> Bool { dtype.safetensorsCode != nil }

    /// `write` with the header size limit as a parameter (tests use a small one).
    @discardableResult
    static func write(_ sd: StateDict, to output: AtomicOutput, dtype: DType?, metadata: [String: String],
                      headerLimit: Int, skipUnsupported: Bool = false, progress: ((Int) -> Void)? = nil) throws -> [TensorEntry] {
        let file = output.destination
        let (items, skipped) = try WriterPlan.make(sd, cast: dtype, file: file, format: "safetensors", holds: holds,
                                                   skipUnsupported: skipUnsupported)
        if items.contains(where: { $0.entry.name == "__metadata__" }) {
            throw CheckpointError("a tensor named '__metadata__' cannot be stored in safetensors", file: file, key: "__metadata__")
        }
        try OutputMetadata.check(metadata, file: file)
        var header = header(items, metadata: metadata)
        let padding = (8 - header.count % 8) % 8
        guard header.count + padding <= headerLimit else {
            throw CheckpointError("the safetensors header would take \(header.count + padding) bytes (\(items.count) tensors), over the "
                                  + "\(headerLimit)-byte limit of safetensors readers; nothing written", file: file)
        }
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try output.write($0) }
        try output.write(header)

        var done = 0
        for item in items {
            if item.entry.chunks != nil, !item.dtype.isPacked, !item.entry.dtype.isPacked {
                // Stored as chunks (a Distributed Checkpoint): each placed into the tensor's region in turn.
                try CheckpointError.withContext(key: item.entry.name) { try ChunkedWrite.write(item, to: output) }
            } else if item.dtype == item.entry.dtype, let span = item.entry.span {
                // Bytes stored verbatim in the input: a file-to-file copy, no pass through memory.
                try CheckpointError.withContext(key: item.entry.name) { try output.write(span) }
            } else {
                let t = try WriterPlan.load(item, file: file)
                try t.bytes.withUnsafeBytes { try output.write($0) }
            }
            done += item.byteCount
            progress?(done)
        }
        return skipped
    }

    /// The JSON header (unpadded) for `items`.
    static func header(_ items: [WriterPlan.Item], metadata: [String: String]) -> [UInt8] {
        var parts: [String] = []
        parts.reserveCapacity(items.count + 1)
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { HeaderJSON.quote($0) + ":" + HeaderJSON.quote(metadata[$0] ?? "") }
            parts.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for item in items {
            let shape = item.entry.shape.map(String.init).joined(separator: ",")
            parts.append(HeaderJSON.quote(item.entry.name)
                + ":{\"dtype\":\"\(item.dtype.safetensorsName)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + item.byteCount)]}")
            offset += item.byteCount
        }
        return Array(("{" + parts.joined(separator: ",") + "}").utf8)
    }
}
