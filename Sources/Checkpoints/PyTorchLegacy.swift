// PLACEHOLDER: being written now; replaced before the first commit that claims this reader.
public enum PyTorchLegacyReader {
    public static func read(path: String) throws -> StateDict { throw CheckpointError("PyTorchLegacyReader not implemented yet", file: path) }
}
