import CHDF5
import Foundation

/// Shared libhdf5 plumbing for `HDF5Reader` and `HDF5Writer`: one-time set-up (no error printing), error-stack
/// messages, identifier ownership, iteration helpers and value readers for attributes and string datasets.
enum H5 {
    private static let prepared: Bool = {
        weights_h5_silence_errors()
        return true
    }()

    /// Silences libhdf5's automatic error printing (once per process).
    static func prepare() { _ = prepared }

    /// Serialises libhdf5 calls made from tensor loaders (which may run on any thread). Recursive: the HDF5 writer
    /// loads tensors (possibly from an HDF5 file) while holding it.
    static let lock = NSRecursiveLock()

    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }

    /// The most specific messages on libhdf5's error stack (then clears it), e.g. "truncated file: eof = 100, …".
    static func lastError() -> String {
        final class Box { var messages: [String] = [] }
        let box = Box()
        let walker: H5E_walk2_t = { _, desc, data in
            guard let desc, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            if let d = desc.pointee.desc {
                let s = String(cString: d)
                if !s.isEmpty && !box.messages.contains(s) { box.messages.append(s) }
            }
            return 0
        }
        _ = H5Ewalk2(weights_h5e_default(), H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(box).toOpaque())
        H5Eclear2(weights_h5e_default())
        let shown = box.messages.prefix(2)
        return shown.isEmpty ? "libhdf5 reported an error" : shown.joined(separator: "; ")
    }

    /// Names of the links in a group, in creation order when the file tracks it, else in name order (with
    /// all-digit names in numeric order, see `naturalOrder`).
    static func linkNames(_ group: hid_t) throws -> [String] {
        final class Box { var names: [String] = [] }
        let op: H5L_iterate_t = { _, name, _, data in
            guard let name, let data else { return -1 }
            Unmanaged<Box>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }
        for index in [H5_INDEX_CRT_ORDER, H5_INDEX_NAME] {
            let box = Box()
            var idx: hsize_t = 0
            if H5Literate(group, index, H5_ITER_INC, &idx, op, Unmanaged.passUnretained(box).toOpaque()) >= 0 {
                return index == H5_INDEX_NAME ? box.names.sorted(by: naturalOrder) : box.names
            }
            if index == H5_INDEX_NAME { break }
            H5Eclear2(weights_h5e_default()) // creation order not tracked: try name order
        }
        throw CheckpointError("cannot list members: \(lastError())")
    }

    /// Names of the attributes of an object, in creation order when tracked, else in name order.
    static func attributeNames(_ obj: hid_t) -> [String] {
        final class Box { var names: [String] = [] }
        let op: H5A_operator2_t = { _, name, _, data in
            guard let name, let data else { return -1 }
            Unmanaged<Box>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }
        for index in [H5_INDEX_CRT_ORDER, H5_INDEX_NAME] {
            let box = Box()
            var idx: hsize_t = 0
            if H5Aiterate2(obj, index, H5_ITER_INC, &idx, op, Unmanaged.passUnretained(box).toOpaque()) >= 0 {
                return index == H5_INDEX_NAME ? box.names.sorted(by: naturalOrder) : box.names
            }
            H5Eclear2(weights_h5e_default())
        }
        return []
    }

    /// HDF5's name order (byte-wise, as h5py's `keys()` shows it), except that names made only of digits come
    /// first and in numeric order, so `vars/2` comes before `vars/10` and `layer1/2` before `layer1/10`.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        func number(_ s: String) -> Substring? {
            guard !s.isEmpty, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return s.drop { $0 == "0" }
        }
        switch (number(a), number(b)) {
        case let (x?, y?) where x != y: return x.count != y.count ? x.count < y.count : x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a.utf8.lexicographicallyPrecedes(b.utf8)
        }
    }

    /// Dimensions of a dataspace: [] for scalar, nil for a null dataspace (no data at all).
    static func dims(_ space: hid_t) throws -> [Int]? {
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR: return []
        case H5S_NULL: return nil
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(space)
            guard rank >= 0, rank <= 32 else { throw CheckpointError("dataspace of rank \(rank) is not supported") }
            var d = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(space, &d, nil) >= 0 else { throw CheckpointError("cannot read dimensions: \(lastError())") }
            return try d.map { v in
                guard v <= hsize_t(Int.max) else { throw CheckpointError("dimension \(v) is too large") }
                return Int(v)
            }
        default:
            throw CheckpointError("unreadable dataspace: \(lastError())")
        }
    }

    /// Whether every bit field of a numeric type lies inside the type's bytes: precision + offset, and a float's
    /// sign, exponent and mantissa positions; an enum's base type and a compound's members recursively (at most 8
    /// levels). libhdf5 1.10 opens a type whose fields point past its size and its conversion then writes past the
    /// caller's buffer (found by the fuzzer: a bool enum whose base claims bits beyond its one byte).
    static func bitLayoutInBounds(_ type: hid_t, depth: Int = 0) -> Bool {
        guard depth <= 8 else { return false }
        let size = H5Tget_size(type)
        guard size > 0, size <= 1 << 20 else { return false }
        let bits = 8 * Int(size)
        switch H5Tget_class(type) {
        case H5T_INTEGER, H5T_FLOAT, H5T_BITFIELD:
            let precision = Int(H5Tget_precision(type)), offset = Int(H5Tget_offset(type))
            guard precision > 0, offset >= 0, offset + precision <= bits else { return false }
            if H5Tget_class(type) == H5T_FLOAT {
                var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
                guard H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return false }
                guard spos >= 0, spos < bits, epos >= 0, esize > 0, epos + esize <= bits, mpos >= 0, msize >= 0, mpos + msize <= bits else { return false }
            }
            return true
        case H5T_ENUM:
            let base = H5Tget_super(type)
            guard base >= 0 else { H5Eclear2(weights_h5e_default()); return false }
            defer { H5Tclose(base) }
            return H5Tget_size(base) == size && bitLayoutInBounds(base, depth: depth + 1)
        case H5T_COMPOUND:
            let n = H5Tget_nmembers(type)
            guard n >= 0, n <= 4096 else { return false }
            for i in 0..<UInt32(n) {
                let member = H5Tget_member_type(type, i)
                guard member >= 0 else { H5Eclear2(weights_h5e_default()); return false }
                defer { H5Tclose(member) }
                let end = Int(H5Tget_member_offset(type, i)).addingReportingOverflow(Int(H5Tget_size(member)))
                guard !end.overflow, end.partialValue <= Int(size), bitLayoutInBounds(member, depth: depth + 1) else { return false }
            }
            return true
        default:
            return true
        }
    }

    /// h5py's bool: an enum of a 1-byte integer with exactly the members FALSE and TRUE.
    static func isBoolEnum(_ type: hid_t) -> Bool {
        guard H5Tget_class(type) == H5T_ENUM, H5Tget_nmembers(type) == 2, H5Tget_size(type) == 1 else { return false }
        var names: [String] = []
        for i in 0..<2 {
            guard let p = H5Tget_member_name(type, UInt32(i)) else { return false }
            names.append(String(cString: p))
            H5free_memory(p)
        }
        guard Set(names) == ["FALSE", "TRUE"] else { return false }
        // Values as h5py writes them: FALSE = 0, TRUE = 1.
        var values: [Int8] = [0, 0]
        for i in 0..<2 where H5Tget_member_value(type, UInt32(i), &values[i]) < 0 { return false }
        return (names[0] == "FALSE" ? values : values.reversed()) == [0, 1]
    }

    /// A value read from an attribute or a string dataset.
    enum Values {
        case ints([Int64])
        case bigUInts([UInt64])
        case floats([Double])
        case bools([Bool])
        case strings([String])
        case unsupported(String)
    }

    /// Caps for values read eagerly (attributes and string datasets), against hostile element counts.
    static let maxValueElements = 1 << 20
    static let maxValueBytes = 64 << 20

    /// Reads every element of an attribute or dataset of type `type` over `space` with `read(memType, buffer)`.
    static func readValues(type: hid_t, space: hid_t, read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> Values {
        let npoints = H5Sget_simple_extent_npoints(space)
        guard npoints >= 0 else { throw CheckpointError("unreadable dataspace: \(lastError())") }
        if H5Sget_simple_extent_type(space) == H5S_NULL { return .unsupported("empty (null dataspace)") }
        let n = Int(npoints)
        guard n <= maxValueElements else { return .unsupported("\(n) elements, too many to keep as metadata") }
        let cls = H5Tget_class(type)
        let size = H5Tget_size(type)
        if cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_ENUM, !bitLayoutInBounds(type) {
            throw CheckpointError("corrupt datatype (a bit field lies outside its \(size) bytes); not read")
        }
        func readInto<T>(_ mem: hid_t, _ zero: T) throws -> [T] {
            var out = [T](repeating: zero, count: n)
            if n == 0 { return out }
            let status = out.withUnsafeMutableBytes { read(mem, $0.baseAddress!) }
            guard status >= 0 else { throw CheckpointError("cannot read values: \(lastError())") }
            return out
        }
        switch cls {
        case H5T_INTEGER:
            if H5Tget_sign(type) == H5T_SGN_NONE && size == 8 {
                let v: [UInt64] = try readInto(weights_h5t_native_uint64(), 0)
                if v.allSatisfy({ $0 <= UInt64(Int64.max) }) { return .ints(v.map { Int64($0) }) }
                return .bigUInts(v)
            }
            return .ints(try readInto(weights_h5t_native_int64(), Int64(0)))
        case H5T_FLOAT:
            return .floats(try readInto(weights_h5t_native_double(), 0.0))
        case H5T_ENUM where isBoolEnum(type):
            let raw: [Int8] = try readInto(type, 0)
            return .bools(raw.map { $0 != 0 })
        case H5T_STRING:
            return .strings(try readStrings(type: type, count: n, read: read))
        default:
            return .unsupported(className(cls) + " values")
        }
    }

    static func readStrings(type: hid_t, count n: Int, read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        let mem = H5Tcopy(weights_h5t_c_s1())
        guard mem >= 0 else { throw CheckpointError("cannot make a string type: \(lastError())") }
        defer { H5Tclose(mem) }
        H5Tset_cset(mem, H5Tget_cset(type))
        if H5Tis_variable_str(type) > 0 {
            H5Tset_size(mem, weights_h5t_variable())
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            if n == 0 { return [] }
            let status = ptrs.withUnsafeMutableBytes { read(mem, $0.baseAddress!) }
            guard status >= 0 else { throw CheckpointError("cannot read strings: \(lastError())") }
            var total = 0
            var out: [String] = []
            for p in ptrs {
                guard let p else { out.append(""); continue }
                let s = String(cString: p)
                total += s.utf8.count
                out.append(s)
            }
            // Free what libhdf5 allocated for the strings.
            let space = H5Screate_simple(1, [hsize_t(n)], nil)
            if space >= 0 {
                _ = ptrs.withUnsafeMutableBytes { H5Dvlen_reclaim(mem, space, weights_h5p_default(), $0.baseAddress!) }
                H5Sclose(space)
            }
            guard total <= maxValueBytes else { throw CheckpointError("strings of \(total) bytes are too large to keep as metadata") }
            return out
        }
        let size = H5Tget_size(type)
        guard size > 0 else { return [String](repeating: "", count: n) }
        let (bytes, o) = Int(size).multipliedReportingOverflow(by: n)
        guard !o, bytes <= maxValueBytes else { throw CheckpointError("strings of \(n) × \(size) bytes are too large to keep as metadata") }
        H5Tset_size(mem, size)
        H5Tset_strpad(mem, H5T_STR_NULLPAD)
        var buf = [UInt8](repeating: 0, count: bytes)
        if bytes == 0 { return [] }
        let status = buf.withUnsafeMutableBytes { read(mem, $0.baseAddress!) }
        guard status >= 0 else { throw CheckpointError("cannot read strings: \(lastError())") }
        let spacePadded = H5Tget_strpad(type) == H5T_STR_SPACEPAD
        return (0..<n).map { i in
            var chunk = buf[(i * Int(size))..<((i + 1) * Int(size))]
            if let z = chunk.firstIndex(of: 0) { chunk = chunk[..<z] }
            if spacePadded { while let last = chunk.last, last == 0x20 { chunk = chunk.dropLast() } }
            return String(decoding: chunk, as: UTF8.self)
        }
    }

    static func className(_ cls: H5T_class_t) -> String {
        switch cls {
        case H5T_INTEGER: return "integer"
        case H5T_FLOAT: return "float"
        case H5T_TIME: return "time"
        case H5T_STRING: return "string"
        case H5T_BITFIELD: return "bitfield"
        case H5T_OPAQUE: return "opaque"
        case H5T_COMPOUND: return "compound"
        case H5T_REFERENCE: return "reference"
        case H5T_ENUM: return "enum"
        case H5T_VLEN: return "variable-length"
        case H5T_ARRAY: return "array"
        default: return "unknown-class"
        }
    }
}
