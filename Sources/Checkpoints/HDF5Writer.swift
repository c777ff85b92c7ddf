import CHDF5
import TensorCore

/// HDF5 writer: one dataset per tensor, readable by h5py.
///
/// - Dotted names become groups: `layer1.0.conv1.weight` → `/layer1/0/conv1/weight` (a `/` in a name counts as a
///   separator too). When a name is both a tensor and a prefix of another tensor (`a` and `a.b`), or has an empty
///   component (`a..b`), the tensors involved are written as flat datasets at the root whose names keep the dots
///   (`/a`, `/a.b`); `HDF5Reader` reads both forms back to the same dotted names.
/// - Groups and the root track link and attribute creation order, so the reader returns the state dict's order.
/// - Little-endian IEEE float64/float32; float16 as the 2-byte IEEE type h5py uses for `float16`; int64/32/16/8
///   and uint8 as standard little-endian integers; bool as h5py's enum of int8 {FALSE = 0, TRUE = 1}.
/// - bfloat16 has no HDF5 or numpy type: it is stored as float32 (exact, every bfloat16 is a float32) with the
///   dataset attribute `dtype = "bfloat16"`; h5py users get usable floats and `HDF5Reader` restores bfloat16.
/// - float8 tensors are stored as their bytes (uint8) with the attribute `dtype = "float8_e4m3fn"` (…); uint16/32/64
///   as unsigned little-endian integers; complex64/128 as h5py's compound {r, i} of two float32/float64. The packed
///   sub-byte floats (float4_e2m1fn, float6_*) have no HDF5 form (`holds`).
/// - `metadata` becomes variable-length UTF-8 string attributes of the root group, in key order.
/// - The file uses the HDF5 1.8 object format (readable by any HDF5 ≥ 1.8, including h5py's bundled library),
///   which also lifts the 64 KiB limit on attributes.
public enum HDF5Writer {
    /// Writes one dataset per tensor to `path` (a temporary path the caller renames into place); attributes
    /// on the root group carry `metadata`.
    /// Tensors of a dtype `holds` refuses are an error naming the first, or, with `skipUnsupported`, left out and
    /// returned.
    @discardableResult
    public static func write(_ sd: StateDict, toPath path: String, dtype: DType?, metadata: [String: String],
                             skipUnsupported: Bool = false, progress: ((Int) -> Void)? = nil) throws -> [TensorEntry] {
        H5.prepare()
        let (items, skipped) = try WriterPlan.make(sd, cast: dtype, file: path, format: "HDF5", holds: holds, skipUnsupported: skipUnsupported)
        try OutputMetadata.check(metadata, file: path)
        let paths = try datasetPaths(items.map(\.entry.name), file: path)
        try H5.locked {
            var session = try WriteSession(path: path)
            defer { session.close() }
            for key in metadata.keys.sorted() {
                try session.stringAttribute(on: session.file, name: key, value: metadata[key] ?? "", objectPath: "/")
            }
            var done = 0
            for (item, components) in zip(items, paths) {
                try CheckpointError.withContext(file: path, key: item.entry.name) {
                    let tensor = try WriterPlan.load(item, file: path)
                    try session.dataset(components, tensor)
                }
                done += item.byteCount
                progress?(done)
            }
            try session.finish()
        }
        return skipped
    }

    /// Whether HDF5 output holds tensors of `dtype` (all but the packed sub-byte floats).
    public static func holds(_ dtype: DType) -> Bool { !dtype.isPacked }

    /// The HDF5 path components of each name (see the type's documentation for the flat fallback).
    static func datasetPaths(_ names: [String], file: String) throws -> [[String]] {
        let normalized = names.map { $0.replacingSlashes() }
        var seen = Set<String>()
        for (n, original) in zip(normalized, names) where !seen.insert(n).inserted {
            throw CheckpointError("two tensors map to the same HDF5 path (names differ only in '/' versus '.')", file: file, key: original)
        }
        let split = normalized.map { $0.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
        func nested(_ comps: [String]) -> Bool { comps.count > 1 && comps.allSatisfy { !$0.isEmpty && $0 != "." } }
        var groupPrefixes = Set<String>()
        for comps in split where nested(comps) {
            for k in 1..<comps.count { groupPrefixes.insert(comps[0..<k].joined(separator: ".")) }
        }
        return zip(normalized, split).map { name, comps in
            let leafUnderLeaf = comps.count > 1 && (1..<comps.count).contains { seen.contains(comps[0..<$0].joined(separator: ".")) }
            if !nested(comps) || groupPrefixes.contains(name) || leafUnderLeaf { return [name] }
            return comps
        }
    }
}

/// The state of one HDF5 file being written (caller holds `H5.lock`).
private struct WriteSession {
    let path: String
    let file: hid_t
    private var groups: [String: hid_t] = [:]
    private let gcpl: hid_t
    private var types: [DType: hid_t] = [:]
    private var closed = false

    init(path: String) throws {
        self.path = path
        let flags = UInt32(H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED)
        let fcpl = H5Pcreate(weights_h5p_file_create())
        let fapl = H5Pcreate(weights_h5p_file_access())
        let gcpl = H5Pcreate(weights_h5p_group_create())
        defer {
            if fcpl >= 0 { H5Pclose(fcpl) }
            if fapl >= 0 { H5Pclose(fapl) }
        }
        guard fcpl >= 0, fapl >= 0, gcpl >= 0,
              H5Pset_link_creation_order(fcpl, flags) >= 0, H5Pset_attr_creation_order(fcpl, flags) >= 0,
              H5Pset_link_creation_order(gcpl, flags) >= 0, H5Pset_attr_creation_order(gcpl, flags) >= 0,
              H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0 else {
            if gcpl >= 0 { H5Pclose(gcpl) }
            throw CheckpointError("cannot set up HDF5 property lists: \(H5.lastError())", file: path)
        }
        _ = H5Pset_file_locking(fapl, false, true)
        let file = H5Fcreate(path, weights_h5f_acc_trunc(), fcpl, fapl)
        guard file >= 0 else {
            H5Pclose(gcpl)
            throw CheckpointError("cannot create HDF5 file: \(H5.lastError())", file: path)
        }
        self.file = file
        self.gcpl = gcpl
    }

    /// Closes everything still open (after an error; `finish` is the success path).
    mutating func close() {
        guard !closed else { return }
        closed = true
        for g in groups.values { H5Gclose(g) }
        for t in types.values { H5Tclose(t) }
        H5Pclose(gcpl)
        H5Fclose(file)
    }

    mutating func finish() throws {
        guard !closed else { return }
        closed = true
        for g in groups.values { H5Gclose(g) }
        for t in types.values { H5Tclose(t) }
        H5Pclose(gcpl)
        guard H5Fclose(file) >= 0 else { throw CheckpointError("cannot finish the HDF5 file: \(H5.lastError())", file: path) }
    }

    private mutating func group(_ comps: ArraySlice<String>) throws -> hid_t {
        guard let name = comps.last else { return file }
        let key = comps.joined(separator: "/")
        if let g = groups[key] { return g }
        let parent = try group(comps.dropLast())
        let g = H5Gcreate2(parent, name, weights_h5p_default(), gcpl, weights_h5p_default())
        guard g >= 0 else { throw CheckpointError("cannot create group '/\(key)': \(H5.lastError())", file: path) }
        groups[key] = g
        return g
    }

    /// The file (and memory: the host is little-endian like the tensor bytes) datatype for `dtype`.
    private mutating func type(_ dtype: DType) throws -> hid_t {
        if let t = types[dtype] { return t }
        var t: hid_t
        switch dtype {
        case .float64: t = H5Tcopy(weights_h5t_ieee_f64le())
        case .float32, .bfloat16: t = H5Tcopy(weights_h5t_ieee_f32le())
        case .float16:
            t = H5Tcopy(weights_h5t_ieee_f32le())
            if t >= 0 && (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
                H5Tclose(t); t = -1
            }
        case .int64: t = H5Tcopy(weights_h5t_std_i64le())
        case .int32: t = H5Tcopy(weights_h5t_std_i32le())
        case .int16: t = H5Tcopy(weights_h5t_std_i16le())
        case .int8: t = H5Tcopy(weights_h5t_std_i8le())
        case .uint8: t = H5Tcopy(weights_h5t_std_u8le())
        // float8: the bytes, as uint8, plus a dtype attribute (see `dataset`).
        case .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu: t = H5Tcopy(weights_h5t_std_u8le())
        // The host is little-endian (as the tensor bytes), so the native unsigned types are the little-endian ones.
        case .uint16: t = H5Tcopy(weights_h5t_native_uint16())
        case .uint32: t = H5Tcopy(weights_h5t_native_uint32())
        case .uint64: t = H5Tcopy(weights_h5t_native_uint64())
        case .complex64: t = H5.complexType(weights_h5t_ieee_f32le(), size: 4)
        case .complex128: t = H5.complexType(weights_h5t_ieee_f64le(), size: 8)
        case .bool:
            t = H5Tenum_create(weights_h5t_std_i8le())
            var no: Int8 = 0, yes: Int8 = 1
            if t >= 0 && (H5Tenum_insert(t, "FALSE", &no) < 0 || H5Tenum_insert(t, "TRUE", &yes) < 0) {
                H5Tclose(t); t = -1
            }        case .float4_e2m1fn, .float6_e2m3fn, .float6_e3m2fn:
            throw CheckpointError("HDF5 output cannot hold packed \(dtype.rawValue) tensors", file: path)
        }
        guard t >= 0 else { throw CheckpointError("cannot make the HDF5 type for \(dtype.rawValue): \(H5.lastError())", file: path) }
        types[dtype] = t
        return t
    }

    mutating func dataset(_ comps: [String], _ tensor: Tensor) throws {
        let parent = try group(comps.dropLast()[...])
        let hdfPath = "/" + comps.joined(separator: "/")
        guard let leaf = comps.last else { throw CheckpointError("empty dataset name", file: path) }
        let ftype = try type(tensor.dtype)
        let space: hid_t
        if tensor.shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = tensor.shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard space >= 0 else { throw CheckpointError("cannot create the dataspace for '\(hdfPath)': \(H5.lastError())", file: path) }
        defer { H5Sclose(space) }
        let ds = H5Dcreate2(parent, leaf, ftype, space, weights_h5p_default(), weights_h5p_default(), weights_h5p_default())
        guard ds >= 0 else { throw CheckpointError("cannot create dataset '\(hdfPath)': \(H5.lastError())", file: path) }
        defer { H5Dclose(ds) }
        // bfloat16 is stored as float32 (exact) plus an attribute saying so.
        let data = tensor.dtype == .bfloat16 ? tensor.converted(to: .float32) : tensor
        if data.elementCount > 0 {
            let status = data.bytes.withUnsafeBytes {
                H5Dwrite(ds, ftype, weights_h5s_all(), weights_h5s_all(), weights_h5p_default(), $0.baseAddress!)
            }
            guard status >= 0 else { throw CheckpointError("cannot write dataset '\(hdfPath)': \(H5.lastError())", file: path) }
        }
        if tensor.dtype == .bfloat16 || tensor.dtype.isFloat8 {
            try stringAttribute(on: ds, name: "dtype", value: tensor.dtype.rawValue, objectPath: hdfPath)
        }
    }

    /// A scalar variable-length UTF-8 string attribute (h5py reads it as `str`).
    func stringAttribute(on obj: hid_t, name: String, value: String, objectPath: String) throws {
        func fail(_ what: String) -> CheckpointError {
            CheckpointError("cannot \(what) attribute '\(name)' on '\(objectPath)': \(H5.lastError())", file: path)
        }
        let type = H5Tcopy(weights_h5t_c_s1())
        guard type >= 0 else { throw fail("make the type of") }
        defer { H5Tclose(type) }
        H5Tset_size(type, weights_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw fail("make the dataspace of") }
        defer { H5Sclose(space) }
        let attr = H5Acreate2(obj, name, type, space, weights_h5p_default(), weights_h5p_default())
        guard attr >= 0 else { throw fail("create") }
        defer { H5Aclose(attr) }
        let status = value.withCString { cs -> herr_t in
            var p: UnsafePointer<CChar>? = cs
            return withUnsafeMutablePointer(to: &p) { H5Awrite(attr, type, $0) }
        }
        guard status >= 0 else { throw fail("write") }
    }
}
