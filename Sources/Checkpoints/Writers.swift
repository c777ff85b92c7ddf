// PLACEHOLDER: being written now.
import TensorCore
public enum SafetensorsWriter {
    /// Streams the tensors of `sd` (floating tensors cast to `dtype` when given) into `output` as safetensors,
    /// with `metadata` as the header's `__metadata__`. `progress` receives the number of tensor bytes written so far.
    public static func write(_ sd: StateDict, to output: AtomicOutput, dtype: DType?, metadata: [String: String],
                             progress: ((Int) -> Void)? = nil) throws {
        throw CheckpointError("safetensors writer not implemented yet", file: output.destination)
    }
}
public enum HDF5Writer {
    /// Writes one dataset per tensor to `path` (a temporary path the caller renames into place); attributes
    /// on the root group carry `metadata`.
    public static func write(_ sd: StateDict, toPath path: String, dtype: DType?, metadata: [String: String],
                             progress: ((Int) -> Void)? = nil) throws {
        throw CheckpointError("HDF5 writer not implemented yet", file: path)
    }
}
