import TensorCore

/// One box of a tensor stored on its own (a chunk of a PyTorch Distributed Checkpoint): where it sits in the whole
/// tensor and how to read its values. Writers place chunks straight into the output, one at a time, so a tensor
/// stored as chunks never has to be held whole.
package struct TensorChunk: Sendable {
    /// Index of the chunk's first element in the whole tensor, per dimension.
    package let offsets: [Int]
    /// The chunk's extent per dimension.
    package let sizes: [Int]
    /// The chunk's own values (dtype of the whole tensor, shape `sizes`); its `span` is set when the bytes lie
    /// verbatim in their file.
    package let entry: TensorEntry

    package init(offsets: [Int], sizes: [Int], entry: TensorEntry) {
        self.offsets = offsets
        self.sizes = sizes
        self.entry = entry
    }
}

/// Placing chunks into a whole C-contiguous tensor. The caller has checked (`ChunkLayout.check`) that each chunk
/// lies inside the tensor and that together they cover it exactly.
package enum ChunkPlacement {
    /// The chunk's bytes as runs that are contiguous in the whole tensor: calls `body(destinationByte,
    /// sourceByte, byteCount)` for each, in source order. `elementSize` is the size of one element.
    package static func runs(shape: [Int], offsets: [Int], sizes: [Int], elementSize es: Int,
                             _ body: (_ destination: Int, _ source: Int, _ count: Int) throws -> Void) rethrows {
        let n = shape.count
        if sizes.contains(0) { return }
        if n == 0 { try body(0, 0, es); return }
        // Row-major strides of the whole tensor, in elements.
        var strides = [Int](repeating: 1, count: n)
        for d in stride(from: n - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        // The innermost dimensions the chunk spans fully merge into one run with the first partial one outside them.
        var k = n - 1
        while k > 0 && sizes[k] == shape[k] { k -= 1 }
        let runElements = sizes[k] * strides[k]
        let runBytes = runElements * es
        var index = [Int](repeating: 0, count: k)   // position within the chunk over dims 0..<k
        var source = 0
        while true {
            var dest = offsets[k] * strides[k]
            for d in 0..<k { dest += (offsets[d] + index[d]) * strides[d] }
            for d in (k + 1)..<n { dest += offsets[d] * strides[d] }   // zero: those dims are full
            try body(dest * es, source, runBytes)
            source += runBytes
            var d = k - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < sizes[d] { break }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// Whether the chunk is one contiguous range of the whole tensor (a row block).
    package static func isContiguous(shape: [Int], sizes: [Int]) -> Bool {
        let n = shape.count
        if n == 0 { return true }
        var k = n - 1
        while k > 0 && sizes[k] == shape[k] { k -= 1 }
        return (0..<k).allSatisfy { sizes[$0] == 1 }
    }

    /// Loads each chunk in turn and copies it into one C-contiguous buffer: the whole tensor in memory.
    static func assemble(dtype: DType, shape: [Int], chunks: [TensorChunk]) throws -> Tensor {
        let es = dtype.byteSize
        let total = (ShapeMath.elementCount(shape) ?? 0) * es
        var bytes = [UInt8](repeating: 0, count: total)
        for c in chunks where !c.sizes.contains(0) {
            let t = try c.entry.load()
            guard t.dtype == dtype, t.shape == c.sizes, t.byteCount == (ShapeMath.elementCount(c.sizes) ?? -1) * es else {
                throw CheckpointError("chunk at \(c.offsets) holds \(t.dtype.rawValue) \(t.shape), expected \(dtype.rawValue) \(c.sizes) (\(c.entry.location))")
            }
            try t.bytes.withUnsafeBytes { src in
                try bytes.withUnsafeMutableBytes { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    try runs(shape: shape, offsets: c.offsets, sizes: c.sizes, elementSize: es) { to, from, count in
                        guard from + count <= src.count, to + count <= dst.count else {
                            throw CheckpointError("chunk at \(c.offsets) does not fit the tensor (\(c.entry.location))")
                        }
                        (d + to).copyMemory(from: s + from, byteCount: count)
                    }
                }
            }
        }
        return Tensor(dtype: dtype, shape: shape, bytes: bytes)
    }
}

/// Checks that a set of chunk boxes tiles a tensor exactly: every chunk inside the tensor, no two overlapping,
/// and no element left uncovered.
package enum ChunkLayout {
    /// Most pairs of chunks compared for overlap in one checkpoint, all tensors together (a sweep over the first
    /// dimension keeps real layouts linear; a crafted one could otherwise ask for billions of comparisons per
    /// tensor, and repeat that tensor).
    static let maxComparisons = 50_000_000

    /// `where_(i)` names chunk `i` (its file) for messages. Throws a `CheckpointError` naming the problem.
    package static func check(shape: [Int], chunks: [(offsets: [Int], sizes: [Int])], where where_: (Int) -> String) throws {
        var comparisons = maxComparisons
        try check(shape: shape, chunks: chunks, comparisons: &comparisons, where: where_)
    }

    /// The same, drawing overlap comparisons from `comparisons`, a budget shared by the tensors of one checkpoint.
    package static func check(shape: [Int], chunks: [(offsets: [Int], sizes: [Int])], comparisons budget: inout Int,
                              where where_: (Int) -> String) throws {
        let n = shape.count
        guard let total = ShapeMath.elementCount(shape) else { throw CheckpointError("shape \(shape) overflows") }
        var covered = 0
        var boxes: [(start: [Int], end: [Int], index: Int)] = []
        for (i, c) in chunks.enumerated() {
            guard c.offsets.count == n, c.sizes.count == n else {
                throw CheckpointError("chunk with offsets \(c.offsets) and sizes \(c.sizes) does not have the tensor's \(n) dimensions (shape \(shape)) in \(where_(i))")
            }
            var end: [Int] = []
            for d in 0..<n {
                let (e, o) = c.offsets[d].addingReportingOverflow(c.sizes[d])
                guard c.offsets[d] >= 0, c.sizes[d] >= 0, !o, e <= shape[d] else {
                    throw CheckpointError("chunk at offsets \(c.offsets) with sizes \(c.sizes) lies outside the tensor's shape \(shape) in \(where_(i))")
                }
                end.append(e)
            }
            guard let volume = ShapeMath.elementCount(c.sizes) else { throw CheckpointError("chunk sizes \(c.sizes) overflow in \(where_(i))") }
            if volume == 0 { continue }
            let (s, o) = covered.addingReportingOverflow(volume)
            guard !o else { throw CheckpointError("chunk volumes overflow") }
            covered = s
            boxes.append((c.offsets, end, i))
        }
        // Overlaps: sweep along dimension 0 (a scalar's boxes all overlap each other).
        boxes.sort { ($0.start.first ?? 0) < ($1.start.first ?? 0) }
        for a in 0..<boxes.count {
            var b = a + 1
            while b < boxes.count, n == 0 || boxes[b].start[0] < boxes[a].end[0] {
                budget -= 1
                guard budget >= 0 else {
                    throw CheckpointError("chunk layouts need more than \(maxComparisons) overlap comparisons in all (this tensor has \(chunks.count) chunks); refused")
                }
                if (0..<n).allSatisfy({ boxes[b].start[$0] < boxes[a].end[$0] && boxes[a].start[$0] < boxes[b].end[$0] }) {
                    let (x, y) = (boxes[a], boxes[b])
                    throw CheckpointError("chunks overlap: offsets \(chunks[x.index].offsets) sizes \(chunks[x.index].sizes) in \(where_(x.index)) "
                                          + "and offsets \(chunks[y.index].offsets) sizes \(chunks[y.index].sizes) in \(where_(y.index))")
                }
                b += 1
            }
        }
        guard covered == total else {
            throw CheckpointError("chunks cover \(covered) of the tensor's \(total) elements (shape \(shape)): a gap")
        }
    }
}
