import Foundation

extension Converter {
    /// `write` for `maxShardSize`: a folder of safetensors shards and their index (`ShardedSafetensorsWriter`).
    static func writeShards(_ prepared: PreparedConversion, to output: String, limit: Int, options: ConversionOptions,
                            progress: ((Int) -> Void)?) throws -> ConversionResult {
        guard options.format == .safetensors else {
            throw CheckpointError("sharded output (--max-shard-size) is written as safetensors only; HDF5 has no sharded layout here", file: output)
        }
        let start = Date()
        // The input (a file, or a sharded set's index and shards) must not lie in the folder being replaced.
        for file in [prepared.source.file] + prepared.source.shards {
            let folder = PathText.parent(file)
            if sameFile(folder.isEmpty ? "." : folder, output) { throw ConversionError.outputIsInput(input: prepared.source.file) }
        }
        let written = try ShardedSafetensorsWriter.write(prepared.stateDict, toFolder: output, maxShardSize: limit, dtype: options.dtype,
                                                         metadata: prepared.metadata, overwrite: options.overwrite, durable: options.durable,
                                                         skipUnsupported: options.skipUnsupported, progress: progress)
        let bytes = written.files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        var result = ConversionResult(input: prepared.source.file, output: output, prepared: prepared, bytesWritten: bytes,
                                      seconds: Date().timeIntervalSince(start))
        result.files = written.files
        result.skipped = prepared.source.unsupported.map { ($0.name, "\($0.what) cannot be converted") }
            + written.skipped.map { ($0.name, "safetensors cannot hold \($0.dtype.cast(to: options.dtype).rawValue) tensors") }
        return result
    }
}
