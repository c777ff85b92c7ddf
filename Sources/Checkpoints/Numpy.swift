// PLACEHOLDER: being written now.
public enum NumpyReader {
    public static func readNPY(path: String) throws -> StateDict { throw CheckpointError("npy not implemented yet", file: path) }
    public static func readNPZ(path: String) throws -> StateDict { throw CheckpointError("npz not implemented yet", file: path) }
}
