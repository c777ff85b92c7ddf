import CHDF5

/// Checks that run before libhdf5 touches a dataset's data (caller holds `H5.lock` or is the isolated child).
///
/// * Data outside the input file is refused: external storage (`H5Pset_external`, which libhdf5 would read from any
///   path, a FIFO or `/dev/zero` included), virtual datasets (which open other HDF5 files, or the same one again)
///   and external or user-defined links. The dataset creation property list says so before any data is read.
/// * Chunks must decode to exactly one chunk: libhdf5 1.10 hands out its own uninitialised buffer tail when a
///   filtered chunk decodes short (a skipped gzip filter on a short raw chunk, a gzip stream of fewer bytes), so the
///   output would hold heap bytes that vary from run to run. Each allocated chunk's decoded size is worked out from
///   its stored size and filter mask (inflating gzip streams to count their bytes) and must equal the chunk size.
enum H5Checks {
    /// Refuses a dataset whose data lies outside the file: external storage or a virtual layout.
    static func requireLocalStorage(_ ds: hid_t, hdfPath: String) throws {
        let dcpl = H5Dget_create_plist(ds)
        guard dcpl >= 0 else {
            throw CheckpointError("HDF5 dataset '\(hdfPath)': cannot read its creation properties: \(H5.lastError())")
        }
        defer { H5Pclose(dcpl) }
        let externals = H5Pget_external_count(dcpl)
        if externals != 0 {
            var names: [String] = []
            for i in 0..<max(0, min(Int(externals), 3)) {
                var buf = [CChar](repeating: 0, count: 1024)
                var offset: off_t = 0
                var size: hsize_t = 0
                if H5Pget_external(dcpl, UInt32(i), buf.count, &buf, &offset, &size) >= 0 {
                    names.append(quotedName(buf))
                }
            }
            H5Eclear2(weights_h5e_default())
            let list = names.isEmpty ? "another file" : names.joined(separator: ", ") + (externals > 3 ? ", …" : "")
            throw CheckpointError("HDF5 dataset '\(hdfPath)' uses external storage in \(list): data outside the input file is refused")
        }
        if H5Pget_layout(dcpl) == H5D_VIRTUAL {
            var count = 0
            var names: [String] = []
            if H5Pget_virtual_count(dcpl, &count) >= 0 {
                for i in 0..<min(count, 3) {
                    var buf = [CChar](repeating: 0, count: 1024)
                    if H5Pget_virtual_filename(dcpl, i, &buf, buf.count) >= 0 {
                        let n = quotedName(buf)
                        if !names.contains(n) { names.append(n) }
                    }
                }
            }
            H5Eclear2(weights_h5e_default())
            let from = names.isEmpty ? "" : " mapping data from \(names.joined(separator: ", "))"
            throw CheckpointError("HDF5 dataset '\(hdfPath)' is a virtual dataset\(from): data outside the input file is refused")
        }
    }

    /// A file name from the file, quoted; or a placeholder when it is not valid UTF-8 (libhdf5 1.10 can read a corrupt
    /// name past its end, and those bytes must not reach the message).
    static func quotedName(_ buf: [CChar]) -> String {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        guard let s = String(validatingUTF8: bytes.map { CChar(bitPattern: $0) } + [0]), bytes.count <= 512 else {
            return "(a file name that is not valid UTF-8)"
        }
        return "'\(s)'"
    }

    /// Refuses an external or user-defined link (soft links inside the file are noted by the walker, not followed).
    static func linkRefusal(_ group: hid_t, name: String, info: H5L_info_t, hdfPath: String) -> CheckpointError {
        var target = ""
        if info.type == H5L_TYPE_EXTERNAL {
            let size = Int(info.u.val_size)
            if size > 0 && size <= 1 << 16 {
                var buf = [UInt8](repeating: 0, count: size)
                if H5Lget_val(group, name, &buf, size, weights_h5p_default()) >= 0 {
                    var flags: UInt32 = 0
                    var file: UnsafePointer<CChar>?
                    var object: UnsafePointer<CChar>?
                    if H5Lunpack_elink_val(&buf, size, &flags, &file, &object) >= 0, let file, let object {
                        target = " to '\(String(cString: file))' object '\(String(cString: object))'"
                    }
                }
            }
            H5Eclear2(weights_h5e_default())
            return CheckpointError("HDF5 link '\(hdfPath)' is an external link\(target): data outside the input file is refused")
        }
        return CheckpointError("HDF5 link '\(hdfPath)' is a user-defined link (type \(info.type.rawValue)): not followed, refused")
    }

    // MARK: chunks

    static let deflate: H5Z_filter_t = 1, shuffle: H5Z_filter_t = 2, fletcher32: H5Z_filter_t = 3
    static let szip: H5Z_filter_t = 4, nbit: H5Z_filter_t = 5, scaleoffset: H5Z_filter_t = 6

    /// Verifies that every allocated chunk of a chunked, filtered dataset decodes to exactly one chunk.
    static func requireWholeChunks(_ ds: hid_t, hdfPath: String) throws {
        func fail(_ what: String) -> CheckpointError { CheckpointError("HDF5 dataset '\(hdfPath)': \(what)") }
        let dcpl = H5Dget_create_plist(ds)
        guard dcpl >= 0 else { throw fail("cannot read its creation properties: \(H5.lastError())") }
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CHUNKED else { return }
        let nfilters = Int(H5Pget_nfilters(dcpl))
        guard nfilters > 0 else { return } // unfiltered chunks are read whole (zeros past the end of the file)
        guard nfilters <= 32 else { throw fail("\(nfilters) filters") }
        var filters: [H5Z_filter_t] = []
        for i in 0..<nfilters {
            var flags: UInt32 = 0
            var nelmts = 0
            var config: UInt32 = 0
            var name = [CChar](repeating: 0, count: 64)
            var cd = [UInt32](repeating: 0, count: 16)
            let id = H5Pget_filter2(dcpl, UInt32(i), &flags, &nelmts, &cd, name.count, &name, &config)
            guard id >= 0 else { throw fail("unreadable filter pipeline: \(H5.lastError())") }
            guard [deflate, shuffle, fletcher32, szip, nbit, scaleoffset].contains(id) else {
                throw fail("filter \(id) ('\(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))') is not supported (only libhdf5's built-in filters are)")
            }
            filters.append(id)
        }
        let type = H5Dget_type(ds)
        guard type >= 0 else { throw fail("cannot read its datatype: \(H5.lastError())") }
        let elementSize = H5Tget_size(type)
        H5Tclose(type)
        let space = H5Dget_space(ds)
        guard space >= 0 else { throw fail("cannot read its dataspace: \(H5.lastError())") }
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 1, rank <= 32 else { return }
        var dims = [hsize_t](repeating: 0, count: rank)
        var chunk = [hsize_t](repeating: 0, count: rank)
        guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0, H5Pget_chunk(dcpl, Int32(rank), &chunk) == Int32(rank) else {
            throw fail("cannot read its chunk layout: \(H5.lastError())")
        }
        var chunkBytes = UInt64(elementSize)
        var grid: [UInt64] = []
        for (d, c) in zip(dims, chunk) {
            guard c > 0 else { throw fail("chunk dimension 0") }
            let (m, o) = chunkBytes.multipliedReportingOverflow(by: c)
            guard !o else { throw fail("chunk size overflows") }
            chunkBytes = m
            grid.append(d == 0 ? 0 : (d - 1) / c + 1)
        }
        guard chunkBytes <= 1 << 32 else { throw fail("chunks of \(chunkBytes) bytes") }
        if grid.contains(0) { return }
        // A stored chunk lies inside the file (the in-memory image for a .keras member): a corrupt chunk index
        // claiming a larger size must not make us allocate it before libhdf5 fails to read it.
        var fileSize: hsize_t = 0
        let fileID = H5Iget_file_id(ds)
        guard fileID >= 0 else { throw fail("cannot find its file: \(H5.lastError())") }
        let sized = H5Fget_filesize(fileID, &fileSize)
        H5Fclose(fileID)
        guard sized >= 0 else { throw fail("cannot read the file size: \(H5.lastError())") }
        var raw: [UInt8] = []
        var index = [UInt64](repeating: 0, count: rank)
        while true {
            var offset = zip(index, chunk).map { hsize_t($0 * $1) }
            var mask: UInt32 = 0
            var addr: haddr_t = 0
            var size: hsize_t = 0
            guard H5Dget_chunk_info_by_coord(ds, &offset, &mask, &addr, &size) >= 0 else {
                throw fail("chunk at \(offset) is unreadable: \(H5.lastError())")
            }
            if addr != weights_haddr_undef() {
                guard UInt64(addr) <= UInt64(fileSize), UInt64(size) <= UInt64(fileSize) - UInt64(addr) else {
                    throw fail("chunk at \(offset) claims \(size) bytes at address \(addr), past the end of the \(fileSize)-byte file (corrupt chunk index)")
                }
                func short(_ decoded: String) -> CheckpointError {
                    fail("chunk at \(offset) decodes to \(decoded), not the chunk's \(chunkBytes) bytes (corrupt chunk; refused rather than read with undefined bytes)")
                }
                // Undo the pipeline as libhdf5 does: last filter first, skipping those set in the chunk's mask.
                var n = UInt64(size)
                var storedPrefix = true // what is left to decode is still a prefix of the stored bytes
                for i in stride(from: filters.count - 1, through: 0, by: -1) where mask & (1 << UInt32(i)) == 0 {
                    switch filters[i] {
                    case fletcher32:
                        guard n >= 4 else { throw short("\(n) bytes before its checksum") }
                        n -= 4
                    case shuffle: storedPrefix = false
                    case deflate:
                        guard storedPrefix else { throw fail("gzip after another reordering filter is not supported") }
                        storedPrefix = false
                        // The deflate input is the stored chunk minus what later filters stripped from its tail.
                        if raw.count < Int(size) { raw = [UInt8](repeating: 0, count: Int(size)) }
                        var m: UInt32 = 0
                        guard H5Dread_chunk(ds, weights_h5p_default(), &offset, &m, &raw) >= 0 else {
                            throw fail("chunk at \(offset) is unreadable: \(H5.lastError())")
                        }
                        let inflated = raw.withUnsafeBufferPointer { weights_inflated_size($0.baseAddress, Int(n), chunkBytes) }
                        guard inflated >= 0 else {
                            throw fail("chunk at \(offset) is not a valid deflate stream (corrupt chunk)")
                        }
                        guard UInt64(inflated) <= chunkBytes else {
                            throw fail("chunk at \(offset) inflates to more than the chunk's \(chunkBytes) bytes (corrupt chunk)")
                        }
                        n = UInt64(inflated)
                    default:
                        // szip, nbit and scale-offset allocate and fill a whole chunk themselves.
                        n = chunkBytes
                        storedPrefix = false
                    }
                }
                guard n == chunkBytes else { throw short("\(n) bytes") }
            }
            H5Eclear2(weights_h5e_default())
            // Next chunk in C order.
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < grid[axis] { break }
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { break }
        }
    }
}
