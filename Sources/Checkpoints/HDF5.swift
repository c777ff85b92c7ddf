import CHDF5
#if canImport(Glibc)
import Glibc
#endif
import TensorCore

/// HDF5 reader (h5py, Keras) through libhdf5.
///
/// Every dataset becomes a tensor named by its path with `/` → `.` (no leading dot), visited group by group in
/// creation order when the file tracks it (files written by `HDF5Writer` do) and in name order otherwise (the order
/// `h5py.File.keys()` shows), except that all-digit sibling names (`vars/0`, …, `vars/10`) go in numeric order.
/// libhdf5 runs in a child process, for the structure walk and for every data read, so that libhdf5 crashing on a
/// corrupt file becomes an error (`HDF5Isolation.swift`). Data outside the file (external storage, virtual datasets,
/// external links) is refused, and chunks must decode to whole chunks (`HDF5Checks.swift`); an HDF5 superblock behind
/// another format's header is refused (`Checkpoint+Sniff.swift`). Types: IEEE float64/32/16 (and a 2-byte float with bfloat16's
/// field layout), int8/16/32/64, uint8, h5py's bool enum; uint16/uint32 are widened to int64 and uint64 is read as
/// int64 (an error on load if a value exceeds 2^63-1). A float32 dataset carrying the attribute `dtype = "bfloat16"`
/// (how `HDF5Writer` stores bfloat16) is restored as bfloat16. String datasets become metadata; datasets of other
/// types (compound, vlen, opaque, references, …) are skipped, each leaving a metadata note under its own name saying
/// what it was, so that one exotic dataset does not make a whole weight file unreadable.
///
/// Attributes of groups and datasets become metadata named `<path>.<attr>` (`<attr>` at the root); arrays get one
/// entry per element (`<path>.<attr>.<i>`), as lists are flattened elsewhere.
///
/// Keras layouts (see `HDF5Keras.swift`) are renamed and reported by a `keras_layout` metadata entry.
package enum HDF5Reader {
    public static func read(path: String) throws -> StateDict {
        H5.prepare()
        try requireSuperblockAtStart(path: path)
        let source = H5Source(path: path, image: nil)
        let spans = try? SourceFile(path: path)
        return try read(source, format: .hdf5, spans: spans.map { (file: $0, base: 0) })
    }

    /// Reads `source` (a file, or an in-memory image of one). `spans` says where the source's bytes lie in a file
    /// on disk (the file itself, or the archive holding a stored image at byte `base`), for zero-copy writers.
    static func read(_ source: H5Source, format: CheckpointFormat, spans: (file: SourceFile, base: Int)?) throws -> StateDict {
        H5.prepare()
        let path = source.path
        // libhdf5 runs in a child process (see HDF5Isolation.swift): it can crash on corrupt files. The child that
        // walked the structure stays to serve the loads; in-process (debugging), the file is opened here again.
        let (walk, server) = try H5Isolation.walk(source: source)
        let file = server == nil ? try H5.locked { try H5File(source: source) } : nil
        var tensors = walk.datasets
        var metadata = walk.metadata
        if let keras = HDF5Keras.rename(&tensors, stringAttributes: walk.stringAttributes) {
            metadata.append(MetadataEntry(name: "keras_layout", value: .string(keras)))
        }
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted {
            throw CheckpointError("two datasets map to the same tensor name (one of them is \(t.hdfPath))", file: path, member: source.member, key: t.name)
        }
        let size = source.byteCount
        let entries = tensors.map { d in
            let inSource = d.verbatimOffset >= 0 && d.verbatimOffset <= size - d.byteCount
            let span = inSource ? spans.map { FileSpan(file: $0.file, offset: $0.base + d.verbatimOffset, count: d.byteCount) } : nil
            let location = (source.member.map { $0 + ":" } ?? "") + d.hdfPath + d.plan.note
            return TensorEntry(name: d.name, dtype: d.dtype, shape: d.shape, location: location, span: span) {
                try CheckpointError.withContext(member: source.member) {
                    if let server { return try server.load(d) }
                    return try H5.locked { try d.load(file!) }
                }
            }
        }
        return StateDict(format: format, file: path, tensors: entries, metadata: metadata)
    }
}

/// An open HDF5 file, closed when the last loader referring to it goes away.
final class H5File: @unchecked Sendable {
    let id: hid_t
    let path: String
    /// The in-memory image the file was opened from (kept alive while the file is open).
    private let image: H5Image?

    /// Whether `deinit` takes `H5.lock` (not in a forked child, where the lock's owner thread does not exist).
    private let closeUnderLock: Bool

    convenience init(path: String, closeUnderLock: Bool = true) throws {
        try self.init(source: H5Source(path: path, image: nil), closeUnderLock: closeUnderLock)
    }

    init(source: H5Source, closeUnderLock: Bool = true) throws {
        let path = source.path
        self.path = path
        self.closeUnderLock = closeUnderLock
        self.image = source.image
        let id: hid_t
        if let image = source.image {
            id = try image.open(path: path)
        } else {
            let ok = H5Fis_hdf5(path)
            guard ok > 0 else {
                let why = ok < 0 ? H5.lastError() : "no HDF5 signature"
                throw CheckpointError("not a readable HDF5 file (\(why))", file: path)
            }
            let fapl = H5Pcreate(weights_h5p_file_access())
            defer { if fapl >= 0 { H5Pclose(fapl) } }
            if fapl >= 0 {
                // Reading needs no lock; without this, opening fails on file systems without flock.
                _ = H5Pset_file_locking(fapl, false, true)
                // The plain POSIX driver, whatever the superblock's driver block says: no family, split or multi files.
                _ = H5Pset_fapl_sec2(fapl)
            }
            id = H5Fopen(path, weights_h5f_acc_rdonly(), fapl >= 0 ? fapl : weights_h5p_default())
            guard id >= 0 else {
                throw CheckpointError("cannot open HDF5 file (corrupt or truncated?): \(H5.lastError())", file: path)
            }
        }
        self.id = id
    }

    deinit {
        if closeUnderLock { H5.locked { _ = H5Fclose(id) } } else { H5Fclose(id) }
    }
}

/// How a dataset's elements are read into a tensor.
struct H5ReadPlan: Sendable {
    enum Memory: String, Sendable {
        case nativeDouble, nativeFloat, nativeInt8, nativeInt16, nativeInt32, nativeInt64, nativeUInt8
        case nativeUInt16, nativeUInt32, nativeUInt64
        /// h5py's complex layout, a compound {r, i} of two float32 / float64, read as interleaved pairs.
        case complex64, complex128
        /// The file's own 2-byte float type in little-endian order (float16, bfloat16 layouts).
        case fileTypeLE
        /// The native form of the file type (h5py's bool enum).
        case nativeOfFileType
        /// Read as float32 and narrowed to bfloat16 (exact: written from bfloat16 by `HDF5Writer`).
        case float32AsBFloat16
    }
    let memory: Memory
    var note: String = ""
}

/// One dataset found by the walk.
struct H5Dataset: Sendable {
    var name: String
    let hdfPath: String
    let dtype: DType
    let shape: [Int]
    let plan: H5ReadPlan
    let byteCount: Int
    /// Absolute file offset of the data when it lies there verbatim (contiguous layout, little-endian, exactly the
    /// tensor's bytes), else -1. Lets writers copy it file-to-file.
    var verbatimOffset = -1

    /// Reads the dataset (caller holds `H5.lock`).
    func load(_ file: H5File) throws -> Tensor {
        func fail(_ what: String) -> CheckpointError {
            CheckpointError("HDF5 dataset '\(hdfPath)': \(what): \(H5.lastError())", file: file.path)
        }
        let ds = H5Dopen2(file.id, hdfPath, weights_h5p_default())
        guard ds >= 0 else { throw fail("cannot open") }
        defer { H5Dclose(ds) }
        guard byteCount > 0 else { return Tensor(dtype: dtype, shape: shape, bytes: []) }
        // Checked again at load time: the walk's answer is about the file as it was then.
        try CheckpointError.withContext(file: file.path, key: name) {
            try H5Checks.requireLocalStorage(ds, hdfPath: hdfPath)
            try H5Checks.requireWholeChunks(ds, hdfPath: hdfPath)
        }
        let count = byteCount / dtype.byteSize

        /// libhdf5 writes (elements of the dataspace) × (size of `memType`) bytes, whatever the buffer holds: the
        /// two are checked against `size` first, so a dataspace or type that disagrees with the walk's shape and
        /// dtype (a corrupt or changed file) is an error, not a write past the buffer.
        func read(into buf: UnsafeMutableRawPointer, size: Int, memType: hid_t) throws {
            let space = H5Dget_space(ds)
            guard space >= 0 else { throw fail("cannot read its dataspace") }
            let elements = H5Sget_simple_extent_npoints(space)
            H5Sclose(space)
            let elementSize = H5Tget_size(memType)
            let (total, o) = Int(clamping: elements).multipliedReportingOverflow(by: Int(clamping: elementSize))
            guard elements >= 0, elementSize > 0, !o, total == size else {
                throw CheckpointError("HDF5 dataset '\(hdfPath)': its dataspace holds \(elements) elements of \(elementSize) bytes in memory, not the \(size) bytes its shape \(shape) and dtype \(dtype.rawValue) need (corrupt or changed file)",
                                      file: file.path)
            }
            guard H5Dread(ds, memType, weights_h5s_all(), weights_h5s_all(), weights_h5p_default(), buf) >= 0 else {
                throw fail("cannot read")
            }
        }
        func readFixed(_ memType: hid_t) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: byteCount)
            try out.withUnsafeMutableBytes { try read(into: $0.baseAddress!, size: $0.count, memType: memType) }
            return out
        }
        func withDerivedType<T>(_ make: (hid_t) -> hid_t, _ body: (hid_t) throws -> T) throws -> T {
            let ftype = H5Dget_type(ds)
            guard ftype >= 0 else { throw fail("cannot get the datatype") }
            defer { H5Tclose(ftype) }
            let mem = make(ftype)
            guard mem >= 0 else { throw fail("cannot make a memory datatype") }
            defer { H5Tclose(mem) }
            return try body(mem)
        }

        let bytes: [UInt8]
        switch plan.memory {
        case .nativeDouble: bytes = try readFixed(weights_h5t_native_double())
        case .nativeFloat: bytes = try readFixed(weights_h5t_native_float())
        case .nativeInt8: bytes = try readFixed(weights_h5t_native_int8())
        case .nativeInt16: bytes = try readFixed(weights_h5t_native_int16())
        case .nativeInt32: bytes = try readFixed(weights_h5t_native_int32())
        case .nativeInt64: bytes = try readFixed(weights_h5t_native_int64())
        case .nativeUInt8: bytes = try readFixed(weights_h5t_native_uint8())
        case .fileTypeLE:
            bytes = try withDerivedType({ f in
                let m = H5Tcopy(f)
                if m >= 0 { H5Tset_order(m, H5T_ORDER_LE) }
                return m
            }, readFixed)
        case .nativeOfFileType:
            bytes = try withDerivedType({ H5Tget_native_type($0, H5T_DIR_ASCEND) }, readFixed)
        case .nativeUInt16: bytes = try readFixed(weights_h5t_native_uint16())
        case .nativeUInt32: bytes = try readFixed(weights_h5t_native_uint32())
        case .nativeUInt64: bytes = try readFixed(weights_h5t_native_uint64())
        case .complex64, .complex128:
            let double = plan.memory == .complex128
            let mem = H5.complexType(double ? weights_h5t_native_double() : weights_h5t_native_float(), size: double ? 8 : 4)
            guard mem >= 0 else { throw fail("cannot make a memory datatype") }
            defer { H5Tclose(mem) }
            bytes = try readFixed(mem)
        case .float32AsBFloat16:
            var f = [Float](repeating: 0, count: count)
            try f.withUnsafeMutableBytes { try read(into: $0.baseAddress!, size: $0.count, memType: weights_h5t_native_float()) }
            var out = [UInt8](repeating: 0, count: byteCount)
            out.withUnsafeMutableBytes { d in
                f.withUnsafeBytes { s in
                    DTypeConversion.convert(s.baseAddress!, from: .float32, into: d.baseAddress!, to: .bfloat16, count: count)
                }
            }
            bytes = out
        }
        return Tensor(dtype: dtype, shape: shape, bytes: bytes)
    }
}

/// Recursive walk over groups, collecting datasets and attributes (caller holds `H5.lock`).
struct H5Walker {
    let file: H5File
    var datasets: [H5Dataset] = []
    var metadata: [MetadataEntry] = []
    /// String-array attributes by object path, kept whole for Keras layout detection.
    var stringAttributes: [String: [String: [String]]] = [:]
    private var visitedGroups = Set<haddr_t>()
    private var objectCount = 0

    static let maxDepth = 256
    static let maxObjects = 10_000_000

    init(file: H5File) { self.file = file }

    static func dotted(_ hdfPath: String) -> String {
        String(hdfPath.drop { $0 == "/" }).replacingSlashes()
    }

    static func join(_ parent: String, _ child: String) -> String {
        parent == "/" ? "/" + child : parent + "/" + child
    }

    private func metaName(_ objectPath: String, _ leaf: String) -> String {
        let base = Self.dotted(objectPath)
        return base.isEmpty ? leaf : base + "." + leaf
    }

    mutating func visitGroup(_ group: hid_t, hdfPath: String, depth: Int) throws {
        guard depth <= Self.maxDepth else {
            throw CheckpointError("HDF5 group '\(hdfPath)' is nested more than \(Self.maxDepth) levels deep")
        }
        var info = H5O_info_t()
        if H5Oget_info2(group, &info, UInt32(H5O_INFO_BASIC)) >= 0 {
            guard visitedGroups.insert(info.addr).inserted else {
                metadata.append(MetadataEntry(name: Self.dotted(hdfPath), value: .string("<group linked a second time; not visited again>")))
                return
            }
        }
        try readAttributes(group, objectPath: hdfPath, skip: [])
        let names: [String]
        do {
            names = try H5.linkNames(group)
        } catch let e as CheckpointError {
            throw CheckpointError("HDF5 group '\(hdfPath)': \(e.message)")
        }
        for name in names {
            objectCount += 1
            guard objectCount <= Self.maxObjects else { throw CheckpointError("more than \(Self.maxObjects) HDF5 objects") }
            let childPath = Self.join(hdfPath, name)
            var linfo = H5L_info_t()
            guard H5Lget_info(group, name, &linfo, weights_h5p_default()) >= 0 else {
                throw CheckpointError("HDF5 link '\(childPath)': unreadable: \(H5.lastError())")
            }
            if linfo.type == H5L_TYPE_SOFT {
                metadata.append(MetadataEntry(name: Self.dotted(childPath), value: .string("<soft link, not followed>")))
                continue
            }
            guard linfo.type == H5L_TYPE_HARD else {
                throw H5Checks.linkRefusal(group, name: name, info: linfo, hdfPath: childPath)
            }
            let obj = H5Oopen(group, name, weights_h5p_default())
            guard obj >= 0 else { throw CheckpointError("HDF5 object '\(childPath)': cannot open: \(H5.lastError())") }
            defer { H5Oclose(obj) }
            switch H5Iget_type(obj) {
            case H5I_GROUP: try visitGroup(obj, hdfPath: childPath, depth: depth + 1)
            case H5I_DATASET: try visitDataset(obj, hdfPath: childPath)
            default: continue // committed datatypes carry no data
            }
        }
    }

    private mutating func visitDataset(_ ds: hid_t, hdfPath: String) throws {
        func fail(_ what: String) -> CheckpointError {
            CheckpointError("HDF5 dataset '\(hdfPath)': \(what)", key: Self.dotted(hdfPath))
        }
        // Before anything else (even the dataspace of a virtual dataset may open its source files).
        try CheckpointError.withContext(key: Self.dotted(hdfPath)) { try H5Checks.requireLocalStorage(ds, hdfPath: hdfPath) }
        let type = H5Dget_type(ds)
        guard type >= 0 else { throw fail("cannot read its datatype: \(H5.lastError())") }
        defer { H5Tclose(type) }
        let space = H5Dget_space(ds)
        guard space >= 0 else { throw fail("cannot read its dataspace: \(H5.lastError())") }
        defer { H5Sclose(space) }
        let name = Self.dotted(hdfPath)
        let cls = H5Tget_class(type)

        if cls == H5T_STRING {
            try CheckpointError.withContext(key: name) { try H5Checks.requireWholeChunks(ds, hdfPath: hdfPath) }
            let values = try CheckpointError.withContext(key: name) {
                try H5.readValues(type: type, space: space) { H5Dread(ds, $0, weights_h5s_all(), weights_h5s_all(), weights_h5p_default(), $1) }
            }
            let isScalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
            append(values, name: name, scalar: isScalar)
            try readAttributes(ds, objectPath: hdfPath, skip: [])
            return
        }
        guard let shape = try CheckpointError.withContext(key: name, { try H5.dims(space) }) else {
            metadata.append(MetadataEntry(name: name, value: .string("<HDF5 dataset with a null dataspace (no data); skipped>")))
            try readAttributes(ds, objectPath: hdfPath, skip: [])
            return
        }
        guard H5.bitLayoutInBounds(type) else {
            throw CheckpointError("HDF5 dataset '\(hdfPath)': its datatype is corrupt (a bit field lies outside its \(H5Tget_size(type)) bytes); refused before libhdf5 converts with it",
                                  key: name)
        }
        guard var (dtype, plan) = try classify(type) else {
            let what = "\(H5.className(cls)) dataset of \(H5Tget_size(type))-byte elements, shape \(shape)"
            metadata.append(MetadataEntry(name: name, value: .string("<skipped: \(what); not a supported tensor type>")))
            try readAttributes(ds, objectPath: hdfPath, skip: [])
            return
        }
        // bfloat16 written by HDF5Writer: float32 data plus the attribute dtype = "bfloat16".
        var consumed: Set<String> = []
        if dtype == .float32, case .strings(let s)? = try? attributeValues(ds, "dtype"), s == ["bfloat16"] {
            dtype = .bfloat16
            plan = H5ReadPlan(memory: .float32AsBFloat16, note: " (stored as float32)")
            consumed.insert("dtype")
        }
        // float8 written by HDF5Writer: its bytes as uint8 plus the attribute dtype = "float8_e4m3fn" (…).
        if dtype == .uint8, case .strings(let s)? = try? attributeValues(ds, "dtype"), s.count == 1,
           let f8 = DType(rawValue: s[0]), f8.isFloat8 {
            dtype = f8
            plan = H5ReadPlan(memory: .nativeUInt8, note: " (stored as uint8)")
            consumed.insert("dtype")
        }
        guard let byteCount = ShapeMath.byteCount(shape, dtype) else { throw fail("shape \(shape) overflows") }
        // Bound what a load may allocate: the data must be plausible for the bytes the file stores.
        let stored = Int(clamping: H5Dget_storage_size(ds))
        let (plausible, o) = stored.multipliedReportingOverflow(by: 1100)
        if byteCount > 64 << 20 && !o && byteCount > plausible {
            throw fail("declares \(byteCount) bytes of data but stores only \(stored) (implausible even for gzip)")
        }
        var found = H5Dataset(name: name, hdfPath: hdfPath, dtype: dtype, shape: shape, plan: plan, byteCount: byteCount)
        found.verbatimOffset = verbatimOffset(ds, type: type, dtype: dtype, plan: plan, byteCount: byteCount)
        datasets.append(found)
        try readAttributes(ds, objectPath: hdfPath, skip: consumed)
    }

    /// Where the dataset's bytes lie verbatim in the file, or -1: contiguous storage, fully allocated, not external,
    /// and a file type that is bit for bit the tensor's little-endian layout.
    private func verbatimOffset(_ ds: hid_t, type: hid_t, dtype: DType, plan: H5ReadPlan, byteCount: Int) -> Int {
        guard byteCount > 0 else { return -1 }
        let sameLayout: Bool
        switch plan.memory {
        case .nativeDouble: sameLayout = H5Tequal(type, weights_h5t_ieee_f64le()) > 0
        case .nativeFloat: sameLayout = H5Tequal(type, weights_h5t_ieee_f32le()) > 0
        case .nativeInt8: sameLayout = H5Tequal(type, weights_h5t_std_i8le()) > 0
        case .nativeInt16: sameLayout = H5Tequal(type, weights_h5t_std_i16le()) > 0
        case .nativeInt32: sameLayout = H5Tequal(type, weights_h5t_std_i32le()) > 0
        case .nativeInt64: sameLayout = dtype == .int64 && H5Tequal(type, weights_h5t_std_i64le()) > 0
        case .nativeUInt8: sameLayout = H5Tequal(type, weights_h5t_std_u8le()) > 0
        case .nativeUInt16, .nativeUInt32, .nativeUInt64:
            sameLayout = H5Tget_order(type) == H5T_ORDER_LE && H5Tget_offset(type) == 0 && H5Tget_precision(type) == 8 * H5Tget_size(type)
        case .fileTypeLE:
            sameLayout = dtype == .float16 && H5Tget_order(type) == H5T_ORDER_LE && H5Tget_precision(type) == 16
                && H5Tget_ebias(type) == 15 && H5Tget_offset(type) == 0
        case .nativeOfFileType: sameLayout = dtype == .bool // h5py's enum: 1 byte, FALSE = 0, TRUE = 1
        case .complex64, .complex128, .float32AsBFloat16: sameLayout = false
        }
        guard sameLayout else { return -1 }
        let dcpl = H5Dget_create_plist(ds)
        guard dcpl >= 0 else { H5Eclear2(weights_h5e_default()); return -1 }
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CONTIGUOUS, H5Pget_external_count(dcpl) == 0,
              H5Dget_storage_size(ds) == hsize_t(byteCount) else { return -1 }
        let offset = H5Dget_offset(ds)
        guard offset != haddr_t.max, offset <= haddr_t(Int.max - byteCount) else { H5Eclear2(weights_h5e_default()); return -1 }
        return Int(offset)
    }

    /// The tensor dtype and read plan for a file datatype, or nil if it is not a tensor type.
    private func classify(_ type: hid_t) throws -> (DType, H5ReadPlan)? {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            switch size {
            case 8: return (.float64, H5ReadPlan(memory: .nativeDouble))
            case 4: return (.float32, H5ReadPlan(memory: .nativeFloat))
            case 2:
                var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
                guard H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return nil }
                if esize == 5 && msize == 10 { return (.float16, H5ReadPlan(memory: .fileTypeLE)) }
                if esize == 8 && msize == 7 { return (.bfloat16, H5ReadPlan(memory: .fileTypeLE)) }
                return nil
            default: return nil
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) != H5T_SGN_NONE
            switch (signed, size) {
            case (true, 1): return (.int8, H5ReadPlan(memory: .nativeInt8))
            case (true, 2): return (.int16, H5ReadPlan(memory: .nativeInt16))
            case (true, 4): return (.int32, H5ReadPlan(memory: .nativeInt32))
            case (true, 8): return (.int64, H5ReadPlan(memory: .nativeInt64))
            case (false, 1): return (.uint8, H5ReadPlan(memory: .nativeUInt8))
            case (false, 2): return (.uint16, H5ReadPlan(memory: .nativeUInt16))
            case (false, 4): return (.uint32, H5ReadPlan(memory: .nativeUInt32))
            case (false, 8): return (.uint64, H5ReadPlan(memory: .nativeUInt64))
            default: return nil
            }
        case H5T_ENUM where H5.isBoolEnum(type):
            return (.bool, H5ReadPlan(memory: .nativeOfFileType))
        case H5T_COMPOUND:
            switch H5.complexPartSize(type) {
            case 4: return (.complex64, H5ReadPlan(memory: .complex64))
            case 8: return (.complex128, H5ReadPlan(memory: .complex128))
            default: return nil
            }
        default:
            return nil
        }
    }

    private func attributeValues(_ obj: hid_t, _ attrName: String) throws -> H5.Values {
        let attr = H5Aopen(obj, attrName, weights_h5p_default())
        guard attr >= 0 else { throw CheckpointError("cannot open attribute '\(attrName)': \(H5.lastError())") }
        defer { H5Aclose(attr) }
        let type = H5Aget_type(attr)
        guard type >= 0 else { throw CheckpointError("cannot read the type of attribute '\(attrName)': \(H5.lastError())") }
        defer { H5Tclose(type) }
        let space = H5Aget_space(attr)
        guard space >= 0 else { throw CheckpointError("cannot read the dataspace of attribute '\(attrName)': \(H5.lastError())") }
        defer { H5Sclose(space) }
        return try H5.readValues(type: type, space: space) { H5Aread(attr, $0, $1) }
    }

    private mutating func readAttributes(_ obj: hid_t, objectPath: String, skip: Set<String>) throws {
        for attrName in H5.attributeNames(obj) where !skip.contains(attrName) {
            let name = metaName(objectPath, attrName)
            let values = try CheckpointError.withContext(key: name) { try attributeValues(obj, attrName) }
            let attr = H5Aopen(obj, attrName, weights_h5p_default())
            var scalar = true
            if attr >= 0 {
                let space = H5Aget_space(attr)
                if space >= 0 { scalar = H5Sget_simple_extent_type(space) == H5S_SCALAR; H5Sclose(space) }
                H5Aclose(attr)
            }
            if case .strings(let s) = values, !scalar {
                stringAttributes[objectPath, default: [:]][attrName] = s
            }
            append(values, name: name, scalar: scalar)
        }
    }

    /// Metadata entries for values: one entry for a scalar, `name.i` per element for arrays.
    private mutating func append(_ values: H5.Values, name: String, scalar: Bool) {
        let items: [MetaValue]
        switch values {
        case .ints(let v): items = v.map { .int($0) }
        case .bigUInts(let v): items = v.map { $0 <= UInt64(Int64.max) ? .int(Int64($0)) : .bigInt(String($0)) }
        case .floats(let v): items = v.map { .float($0) }
        case .bools(let v): items = v.map { .bool($0) }
        case .strings(let v): items = v.map { .string($0) }
        case .unsupported(let why):
            metadata.append(MetadataEntry(name: name, value: .string("<skipped: \(why)>")))
            return
        }
        if scalar && items.count == 1 {
            metadata.append(MetadataEntry(name: name, value: items[0]))
        } else {
            for (i, v) in items.enumerated() { metadata.append(MetadataEntry(name: "\(name).\(i)", value: v)) }
        }
    }
}
