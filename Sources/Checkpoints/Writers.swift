import TensorCore

/// Shared planning for the streaming writers (`SafetensorsWriter`, `HDF5Writer`): output dtypes, sizes and the
/// checks that must pass before the first byte is written.
enum WriterPlan {
    struct Item {
        let entry: TensorEntry
        /// The dtype written: `cast` for floating tensors when given, the entry's own dtype otherwise.
        let dtype: DType
        let byteCount: Int
    }

    /// Plans `sd` for writing to `file`: rejects duplicate or empty names and shapes whose size overflows.
    static func make(_ sd: StateDict, cast: DType?, file: String) throws -> [Item] {
        var seen = Set<String>()
        var items: [Item] = []
        items.reserveCapacity(sd.tensors.count)
        for t in sd.tensors {
            guard !t.name.isEmpty else { throw CheckpointError("a tensor has an empty name", file: file) }
            guard seen.insert(t.name).inserted else {
                throw CheckpointError("duplicate tensor name", file: file, key: t.name)
            }
            let dtype = (cast != nil && t.dtype.isFloatingPoint) ? cast! : t.dtype
            guard let n = ShapeMath.byteCount(t.shape, dtype) else {
                throw CheckpointError("shape \(t.shape) of \(dtype.rawValue) overflows", file: file, key: t.name)
            }
            items.append(Item(entry: t, dtype: dtype, byteCount: n))
        }
        return items
    }

    /// Loads the tensor of `item`, checks it is what the entry promised, and casts it to the output dtype.
    static func load(_ item: Item, file: String) throws -> Tensor {
        let t = try CheckpointError.withContext(file: file) { try item.entry.load() }
        guard t.dtype == item.entry.dtype, t.shape == item.entry.shape else {
            throw CheckpointError("reader promised \(item.entry.dtype.rawValue) \(item.entry.shape) but loaded \(t.dtype.rawValue) \(t.shape)",
                                  file: file, key: item.entry.name)
        }
        let out = t.converted(to: item.dtype)
        guard out.byteCount == item.byteCount else {
            throw CheckpointError("tensor holds \(out.byteCount) bytes, expected \(item.byteCount)", file: file, key: item.entry.name)
        }
        return out
    }
}
