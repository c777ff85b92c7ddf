// PLACEHOLDER: being written now.
public enum HDF5Reader {
    public static func read(path: String) throws -> StateDict { throw CheckpointError("HDF5 not implemented yet", file: path) }
}
