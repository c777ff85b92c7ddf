import CHDF5

/// h5py's complex numbers: a compound of two IEEE floats of the same size named `r` (offset 0) and `i` (offset =
/// the part size), nothing else. `HDF5Writer` writes complex tensors the same way.
extension H5 {
    /// The size of each part (4 or 8) when `type` is h5py's complex layout, else nil.
    static func complexPartSize(_ type: hid_t) -> Int? {
        guard H5Tget_class(type) == H5T_COMPOUND, H5Tget_nmembers(type) == 2 else { return nil }
        let size = H5Tget_size(type)
        guard size == 8 || size == 16 else { return nil }
        let part = size / 2
        for (i, want) in ["r", "i"].enumerated() {
            guard let p = H5Tget_member_name(type, UInt32(i)) else { H5Eclear2(weights_h5e_default()); return nil }
            let name = String(cString: p)
            H5free_memory(p)
            guard name == want, H5Tget_member_class(type, UInt32(i)) == H5T_FLOAT,
                  H5Tget_member_offset(type, UInt32(i)) == i * part else { return nil }
            let member = H5Tget_member_type(type, UInt32(i))
            guard member >= 0 else { H5Eclear2(weights_h5e_default()); return nil }
            defer { H5Tclose(member) }
            var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
            guard H5Tget_size(member) == part, H5Tget_fields(member, &spos, &epos, &esize, &mpos, &msize) >= 0,
                  (part == 4 && esize == 8 && msize == 23) || (part == 8 && esize == 11 && msize == 52) else { return nil }
        }
        return part
    }

    /// A compound {r, i} of `part` (a float type of `size` bytes), caller closes it; -1 on failure.
    static func complexType(_ part: hid_t, size: Int) -> hid_t {
        let t = H5Tcreate(H5T_COMPOUND, 2 * size)
        guard t >= 0 else { return -1 }
        if H5Tinsert(t, "r", 0, part) < 0 || H5Tinsert(t, "i", size, part) < 0 {
            H5Tclose(t)
            return -1
        }
        return t
    }
}
