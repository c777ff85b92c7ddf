#if canImport(Glibc)
import Glibc
#endif
import CHDF5

/// What libhdf5 opens: an HDF5 file by path, or an in-memory image of one (the inner `model.weights.h5` of a Keras
/// `.keras` archive, see `KerasArchiveReader`). Either way it is opened in the HDF5 child process (`H5Isolation`),
/// which inherits the image's memory across `fork`, and every check of `HDF5Checks.swift` applies.
struct H5Source: Sendable {
    /// The file on disk named in errors (for an image, the archive holding it).
    let path: String
    let image: H5Image?

    /// The archive member an image came from (errors name it), nil for a plain file.
    var member: String? { image?.member }

    /// The size of what libhdf5 reads (the image, or the file).
    var byteCount: Int { image?.bytes.count ?? Checkpoint.fileSize(path) }
}

/// A read-only HDF5 file image in memory: a slice of an archive's mapping (a stored member) or a buffer of its own
/// (an inflated one). libhdf5 reads it in place through the core driver (`weights_h5_image_fapl`: no copy, no
/// growth, never freed by libhdf5); it must start with the HDF5 signature (no user block inside an archive member).
final class H5Image: @unchecked Sendable {
    let member: String
    let bytes: UnsafeRawBufferPointer
    private let mapping: MappedFile?
    private let owned: UnsafeMutableRawBufferPointer?

    /// A slice of `mapping` (kept alive with the image).
    init(member: String, mapping: MappedFile, offset: Int, count: Int) throws {
        self.member = member
        self.mapping = mapping
        self.owned = nil
        self.bytes = try mapping.slice(offset, count)
    }

    /// A buffer of `byteCount` bytes of its own, filled by `fill` (e.g. inflated into directly).
    init(member: String, byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        self.member = member
        self.mapping = nil
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, byteCount), alignment: 64)
        do { try fill(UnsafeMutableRawBufferPointer(rebasing: buf[0..<byteCount])) } catch { buf.deallocate(); throw error }
        self.owned = buf
        self.bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[0..<byteCount])
    }

    /// A copy of `data`.
    init(member: String, copying data: [UInt8]) {
        self.member = member
        self.mapping = nil
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.count), alignment: 64)
        data.withUnsafeBytes { if let base = $0.baseAddress { buf.baseAddress!.copyMemory(from: base, byteCount: $0.count) } }
        self.owned = buf
        self.bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[0..<data.count])
    }

    deinit { owned?.deallocate() }

    /// Opens the image read-only (caller holds `H5.lock`, or is the child). The name only identifies the file to
    /// libhdf5 (the core driver without a backing store opens nothing on disk); it is unique per image.
    func open(path: String) throws -> hid_t {
        guard Checkpoint.starts(bytes, Checkpoint.hdf5Signature) else {
            throw CheckpointError("not an HDF5 file: the member does not start with the HDF5 signature (\(bytes.count) bytes)", file: path, member: member)
        }
        let fapl = weights_h5_image_fapl(bytes.baseAddress, bytes.count)
        guard fapl >= 0 else {
            throw CheckpointError("cannot set up an in-memory HDF5 image: \(H5.lastError())", file: path, member: member)
        }
        defer { H5Pclose(fapl) }
        let name = "\(path)#\(member)@\(UInt(bitPattern: bytes.baseAddress))"
        let id = H5Fopen(name, weights_h5f_acc_rdonly(), fapl)
        guard id >= 0 else {
            throw CheckpointError("cannot open the HDF5 file (corrupt or truncated?): \(H5.lastError())", file: path, member: member)
        }
        return id
    }
}
