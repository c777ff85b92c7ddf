import TensorCore
public enum HDF5Writer {
    /// Writes one dataset per tensor to `path` (a temporary path the caller renames into place); attributes
    /// on the root group carry `metadata`.
    public static func write(_ sd: StateDict, toPath path: String, dtype: DType?, metadata: [String: String],
                             progress: ((Int) -> Void)? = nil) throws {
        throw CheckpointError("HDF5 writer not implemented yet", file: path)
    }
}
