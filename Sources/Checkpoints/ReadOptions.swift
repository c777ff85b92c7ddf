import TensorCore

/// Checks and caps applied while reading a checkpoint (`Checkpoint.open(_:key:options:)`).
public struct ReadOptions: Sendable, Equatable {
    /// Check the CRC-32 of stored zip members before their bytes are copied file-to-file (zero-copy). Members
    /// read into memory (pickles, `.npy` headers, deflated or converted storages) are always checked.
    public var verifyCRC: Bool
    /// Largest total of tensor bytes the checkpoint may declare, or nil for the default: the larger of
    /// `defaultOutputFloor` and `defaultOutputRatio` × the file's size. Stride-0 or overlapping views and deflated
    /// storages can declare far more than the file holds (a 600-byte pickle can declare 1000 GiB).
    public var maxOutputBytes: Int?

    public static let defaultOutputFloor = 16 << 30
    public static let defaultOutputRatio = 16

    public init(verifyCRC: Bool = false, maxOutputBytes: Int? = nil) {
        self.verifyCRC = verifyCRC
        self.maxOutputBytes = maxOutputBytes
    }

    /// The output cap for a file of `fileSize` bytes.
    public func outputLimit(fileSize: Int) -> Int {
        if let maxOutputBytes { return maxOutputBytes }
        let (scaled, o) = fileSize.multipliedReportingOverflow(by: Self.defaultOutputRatio)
        return max(Self.defaultOutputFloor, o ? Int.max : scaled)
    }

    /// Refuses `sd` if its tensors declare more bytes than the cap allows (checked arithmetic throughout).
    public func checkOutputSize(_ sd: StateDict, fileSize: Int) throws {
        let limit = outputLimit(fileSize: fileSize)
        var total = 0
        for t in sd.tensors {
            guard let n = ShapeMath.byteCount(t.shape, t.dtype) else {
                throw CheckpointError("shape \(t.shape) of \(t.dtype.rawValue) overflows", file: sd.file, key: t.name)
            }
            let (s, o) = total.addingReportingOverflow(n)
            guard !o, s <= limit else {
                let how = maxOutputBytes == nil
                    ? "the default cap of max(\(Self.defaultOutputFloor >> 30) GiB, \(Self.defaultOutputRatio) × the file's \(fileSize) bytes)"
                    : "the --max-output-bytes cap"
                throw CheckpointError("tensors declare more than \(limit) bytes of output in total (\(how)); stride-0 or overlapping views "
                                      + "or compressed storages expand beyond the file. Raise the cap with --max-output-bytes if this is expected",
                                      file: sd.file, key: t.name)
            }
            total = s
        }
    }
}
