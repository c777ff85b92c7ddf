import TensorCore

/// Where one storage's bytes live: a zip record or a byte range of a legacy file. Offsets are relative to the
/// storage's element 0.
struct StorageBacking: Sendable {
    /// "archive/data/3" or "storage '140234' at byte 1234" — for messages.
    var name: String
    /// Bytes of the storage that exist on disk (already checked against the storage's declared size).
    var byteCount: Int
    var bigEndian: Bool
    /// Location text for a byte offset within the storage.
    var locate: @Sendable (Int) -> String
    /// Reads `count` bytes at `offset` within the storage.
    var read: @Sendable (_ offset: Int, _ count: Int) throws -> [UInt8]
    /// Where `count` bytes at `offset` within the storage lie verbatim in the file, when they do.
    var span: @Sendable (_ offset: Int, _ count: Int) -> FileSpan? = { _, _ in nil }
}

/// Turns a validated strided view of a storage into a lazily loaded `TensorEntry`.
enum TorchTensorFactory {
    /// Overlapping views (stride-0 expansions) may materialise to more bytes than their storage holds, up to this.
    static let maxExpandedBytes = 1 << 30

    static func entry(name: String, tensor t: TorchTensorRef, resolve: (TorchStorageRef) throws -> StorageBacking) throws -> TensorEntry {
        let st = t.storage
        guard let storageDType = st.dtype else {
            throw UnsupportedTensor.Kind(what: "a tensor stored as \(TorchGlobals.describeStorageType(st))")
        }
        var dtype = storageDType
        if let dn = t.dtypeName {
            guard let known = TorchGlobals.torchDTypes[dn] else {
                throw CheckpointError("tensor has unknown dtype torch.\(dn)", key: name)
            }
            guard let d = known else { throw UnsupportedTensor.Kind(what: "a torch.\(dn) tensor") }
            dtype = d
        }
        let es = dtype.byteSize
        let what = "storage '\(st.key)'"
        guard t.size.count == t.stride.count else {
            throw CheckpointError("tensor has \(t.size.count) sizes but \(t.stride.count) strides", key: name)
        }
        guard t.size.count <= 64 else { throw CheckpointError("tensor has \(t.size.count) dimensions (at most 64 supported)", key: name) }
        let sizeText = "[" + t.size.map(String.init).joined(separator: ", ") + "]"
        var shape: [Int] = []
        var strides: [Int] = []
        for (d, s) in zip(t.size, t.stride) {
            guard d >= 0 else { throw CheckpointError("tensor has negative dimension in shape \(sizeText)", key: name) }
            guard s >= 0 else { throw CheckpointError("tensor has negative stride \(s) (shape \(sizeText))", key: name) }
            shape.append(Int(d))
            strides.append(Int(s))
        }
        guard let count = ShapeMath.elementCount(shape), let byteCount = ShapeMath.byteCount(shape, dtype) else {
            throw CheckpointError("tensor shape \(sizeText) overflows", key: name)
        }
        guard t.storageOffset >= 0 else { throw CheckpointError("tensor has negative storage offset \(t.storageOffset)", key: name) }
        let offset = Int(t.storageOffset)
        // The storage, in bytes (a v3 tensor may read an untyped storage with another element size).
        let (storageBytes, o1) = st.numel.multipliedReportingOverflow(by: storageDType.byteSize)
        guard !o1 else { throw CheckpointError("\(what) declares \(st.numel) elements, which overflows", key: name) }

        // Highest element reached: offset + Σ (size-1)·stride, overflow-checked, must lie inside the storage.
        var maxIndex = offset
        if count > 0 {
            for (d, s) in zip(shape, strides) where d > 1 {
                let (span, a) = (d - 1).multipliedReportingOverflow(by: s)
                let (sum, b) = maxIndex.addingReportingOverflow(span)
                guard !a, !b else { throw CheckpointError("tensor strides overflow (shape \(sizeText))", key: name) }
                maxIndex = sum
            }
            let (endEl, c) = maxIndex.addingReportingOverflow(1)
            let (endByte, d) = endEl.multipliedReportingOverflow(by: es)
            guard !c, !d, endByte <= storageBytes else {
                let strideText = "[" + strides.map(String.init).joined(separator: ", ") + "]"
                throw CheckpointError("view exceeds storage: shape \(sizeText), stride \(strideText), offset \(offset) reach element "
                                      + "\(c ? "beyond Int.max" : String(maxIndex)) but \(what) holds \(storageBytes / es) \(dtype.rawValue) elements", key: name)
            }
        }
        if byteCount > storageBytes && byteCount > maxExpandedBytes {
            throw CheckpointError("tensor of shape \(sizeText) expands \(storageBytes) stored bytes to \(byteCount) bytes (limit \(maxExpandedBytes) for overlapping views)", key: name)
        }
        let backing = try CheckpointError.withContext(key: name) { try resolve(st) }
        let (firstByte, o2) = offset.multipliedReportingOverflow(by: es)
        guard !o2 else { throw CheckpointError("tensor storage offset \(offset) overflows", key: name) }
        let location = backing.locate(count > 0 ? firstByte : 0) + t.note
        let spanBytes = count > 0 ? (maxIndex - offset + 1) * es : 0
        let relStrides = strides
        let (finalShape, finalDType) = (shape, dtype)
        let loader: @Sendable () throws -> Tensor = {
            if count == 0 { return Tensor(dtype: finalDType, shape: finalShape, bytes: []) }
            let raw = try backing.read(firstByte, spanBytes)
            guard raw.count == spanBytes else {
                throw CheckpointError("read \(raw.count) bytes of \(backing.name), expected \(spanBytes)")
            }
            var out = spanBytes == byteCount && isContiguous(finalShape, relStrides)
                ? raw : StridedCopy.gather(raw, elementSize: es, shape: finalShape, strides: relStrides, count: count)
            // Complex elements are two floats, each swapped on its own.
            if backing.bigEndian && es > 1 { StridedCopy.byteSwap(&out, elementSize: finalDType.isComplex ? es / 2 : es) }
            return Tensor(dtype: finalDType, shape: finalShape, bytes: out)
        }
        let verbatim = count > 0 && spanBytes == byteCount && isContiguous(shape, strides) && !(backing.bigEndian && es > 1)
        return TensorEntry(name: name, dtype: dtype, shape: shape, location: location,
                           span: verbatim ? backing.span(firstByte, byteCount) : nil, loader: loader)
    }

    static func isContiguous(_ shape: [Int], _ strides: [Int]) -> Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected &*= shape[i]
        }
        return true
    }
}

/// Materialisation of strided views into C-contiguous bytes.
enum StridedCopy {
    /// Copies the view (`shape`, `strides` in elements, relative to `src`'s first byte) into a C-contiguous array.
    /// The caller has checked that every reached element lies inside `src`.
    static func gather(_ src: [UInt8], elementSize es: Int, shape: [Int], strides: [Int], count: Int) -> [UInt8] {
        // Drop size-1 dimensions and merge dimensions that are contiguous with each other.
        var dims: [(size: Int, stride: Int)] = []
        for (d, s) in zip(shape, strides) where d != 1 {
            if let last = dims.last, last.stride == s &* d {
                dims[dims.count - 1] = (last.size &* d, s)
            } else {
                dims.append((d, s))
            }
        }
        let total = count * es
        return [UInt8](unsafeUninitializedCapacity: total) { outBuf, initialized in
            src.withUnsafeBytes { s in
                guard let sp = s.baseAddress, let dp = UnsafeMutableRawPointer(outBuf.baseAddress) else { return }
                if dims.isEmpty {
                    dp.copyMemory(from: sp, byteCount: es)
                    return
                }
                let nd = dims.count
                let inner = dims[nd - 1].size
                let innerStride = dims[nd - 1].stride
                var idx = [Int](repeating: 0, count: nd)
                var srcEl = 0
                var dst = dp
                while true {
                    copyRow(from: sp + srcEl * es, stride: innerStride, count: inner, elementSize: es, to: dst)
                    dst += inner * es
                    // Advance the outer counters.
                    var k = nd - 2
                    while k >= 0 {
                        idx[k] += 1
                        srcEl += dims[k].stride
                        if idx[k] < dims[k].size { break }
                        srcEl -= dims[k].stride * dims[k].size
                        idx[k] = 0
                        k -= 1
                    }
                    if k < 0 { break }
                }
            }
            initialized = total
        }
    }

    @inline(__always)
    static func copyRow(from src: UnsafeRawPointer, stride: Int, count: Int, elementSize es: Int, to dst: UnsafeMutableRawPointer) {
        if stride == 1 {
            dst.copyMemory(from: src, byteCount: count * es)
            return
        }
        switch es {
        case 1: copyTyped(UInt8.self, src, stride, count, dst)
        case 2: copyTyped(UInt16.self, src, stride, count, dst)
        case 4: copyTyped(UInt32.self, src, stride, count, dst)
        case 8: copyTyped(UInt64.self, src, stride, count, dst)
        default:
            for i in 0..<count { (dst + i * es).copyMemory(from: src + i * stride * es, byteCount: es) }
        }
    }

    @inline(__always)
    static func copyTyped<T>(_: T.Type, _ src: UnsafeRawPointer, _ stride: Int, _ count: Int, _ dst: UnsafeMutableRawPointer) {
        let size = MemoryLayout<T>.size
        for i in 0..<count {
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i * stride * size, as: T.self), toByteOffset: i * size, as: T.self)
        }
    }

    /// Reverses the bytes of every element in place (big-endian files).
    static func byteSwap(_ bytes: inout [UInt8], elementSize es: Int) {
        bytes.withUnsafeMutableBytes { b in
            guard let p = b.baseAddress else { return }
            let n = b.count / es
            switch es {
            case 2: for i in 0..<n { p.storeBytes(of: p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).byteSwapped, toByteOffset: i * 2, as: UInt16.self) }
            case 4: for i in 0..<n { p.storeBytes(of: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).byteSwapped, toByteOffset: i * 4, as: UInt32.self) }
            case 8: for i in 0..<n { p.storeBytes(of: p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).byteSwapped, toByteOffset: i * 8, as: UInt64.self) }
            default:
                for i in 0..<n {
                    var lo = i * es, hi = lo + es - 1
                    while lo < hi { b.swapAt(lo, hi); lo += 1; hi -= 1 }
                }
            }
        }
    }
}
