import TensorCore

/// safetensors reader (format: https://github.com/huggingface/safetensors — "Format" section).
///
/// Layout: u64 little-endian header length N, N bytes of JSON, then the data area. The JSON maps tensor names to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` with offsets relative to the data area (byte 8 + N), plus an
/// optional `__metadata__` string→string map. The file is memory-mapped; only the header is read when opening.
///
/// Validation follows the spec and the reference implementation: the header fits in the file and under 100 MB,
/// is one JSON object, every dtype is known, shapes are non-negative without overflow, `end - begin` equals
/// dtype size × element count, and the byte ranges, sorted, cover the data area exactly (no gaps, no overlaps,
/// nothing after the last tensor).
package enum SafetensorsReader {
    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000
    /// Longest shape (and any header array) accepted: a rank-10M shape would cost ~700 MB to parse.
    public static let maxRank = 64
    /// Most JSON values in a header (~8 per tensor, so ~250 000 tensors); bounds the parse to a few hundred MB.
    public static let maxHeaderValues = 2_000_000

    public static func read(path: String) throws -> StateDict {
        try read(path: path, base: 0)
    }

    /// Reads the safetensors file that starts at byte `base` of `path` and runs to its end (a DCP `.distcp` file
    /// written with `SerializationFormat.SAFETENSORS` holds one after its bytes items). Offsets in errors are
    /// positions in `path`.
    static func read(path: String, base: Int) throws -> StateDict {
        let file = try MappedFile(path: path)
        guard base >= 0, base <= file.size, file.size - base >= 8 else {
            throw CheckpointError("file has \(file.size - min(base, file.size)) bytes from byte \(base), too short for the 8-byte safetensors header length", file: path, offset: base)
        }
        let declared = file.bytes.loadUnaligned(fromByteOffset: base, as: UInt64.self).littleEndian
        guard declared <= UInt64(maxHeaderBytes) else {
            throw CheckpointError("header length \(declared) exceeds the \(maxHeaderBytes)-byte limit (file has \(file.size) bytes)", file: path, offset: base)
        }
        let headerLength = Int(declared)
        guard headerLength <= file.size - base - 8 else {
            throw CheckpointError("header length \(headerLength) runs past the end of the file (\(file.size) bytes)", file: path, offset: base)
        }
        guard headerLength >= 2 else {
            throw CheckpointError("header length \(headerLength) is too small for a JSON object", file: path, offset: base)
        }
        let dataStart = base + 8 + headerLength
        let dataSize = file.size - dataStart

        let root: HeaderJSON.Node
        do {
            root = try HeaderJSON.parse(try file.slice(base + 8, headerLength), base: base + 8, maxArrayItems: maxRank, maxValues: maxHeaderValues)
        } catch let e as HeaderJSON.ParseError {
            throw CheckpointError(e.message, file: path, offset: e.offset)
        }
        guard case .object(let members) = root.value else {
            throw CheckpointError("header is \(root.value.kind), expected a JSON object", file: path, offset: base + 8)
        }

        struct Planned {
            let name: String
            let dtype: DType
            let shape: [Int]
            let begin: Int
            let end: Int
            let headerOffset: Int
            let order: Int
        }
        var planned: [Planned] = []
        var metadata: [MetadataEntry] = []

        for (order, member) in members.enumerated() {
            let name = member.key
            let at = member.node.offset
            func bad(_ message: String) -> CheckpointError {
                CheckpointError(message, file: path, offset: at, key: name)
            }
            if name == "__metadata__" {
                switch member.node.value {
                case .null: continue
                case .object(let pairs):
                    for (k, v) in pairs {
                        guard case .string(let s) = v.value else {
                            throw CheckpointError("__metadata__ value is \(v.value.kind), expected a string", file: path, offset: v.offset, key: k)
                        }
                        metadata.append(MetadataEntry(name: k, value: .string(s)))
                    }
                    continue
                default:
                    throw bad("__metadata__ is \(member.node.value.kind), expected an object of strings")
                }
            }
            guard case .object(let fields) = member.node.value else {
                throw bad("tensor entry is \(member.node.value.kind), expected an object with dtype, shape and data_offsets")
            }
            func field(_ f: String) throws -> HeaderJSON.Node {
                guard let v = fields.first(where: { $0.key == f }) else { throw bad("tensor entry has no '\(f)'") }
                return v.node
            }
            guard case .string(let dtypeName) = try field("dtype").value else { throw bad("'dtype' is not a string") }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                throw bad("unsupported dtype '\(dtypeName)' (supported: \(DType.allCases.compactMap(\.safetensorsCode).joined(separator: ", ")))")
            }
            guard case .array(let dims) = try field("shape").value else { throw bad("'shape' is not an array") }
            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            for d in dims {
                guard let v = d.int else { throw bad("shape entry is not an integer that fits in 64 bits") }
                guard v >= 0 else { throw bad("negative dimension \(v) in shape") }
                shape.append(v)
            }
            guard let nbytes = ShapeMath.byteCount(shape, dtype) else {
                if dtype.isPacked, let n = ShapeMath.elementCount(shape), n < Int.max / 8 {
                    throw bad("\(dtypeName) shape \(shape): \(n) elements of \(dtype.bitSize) bits do not fill whole bytes")
                }
                throw bad("shape \(shape) of \(dtype.rawValue) overflows")
            }
            guard case .array(let offs) = try field("data_offsets").value, offs.count == 2 else {
                throw bad("'data_offsets' is not a [begin, end] pair")
            }
            guard let begin = offs[0].int, let end = offs[1].int, begin >= 0, end >= 0 else {
                throw bad("'data_offsets' are not non-negative integers that fit in 64 bits")
            }
            guard end >= begin else { throw bad("data_offsets [\(begin), \(end)]: end is before begin") }
            guard end <= dataSize else {
                throw bad("data_offsets [\(begin), \(end)] run past the data area of \(dataSize) bytes")
            }
            guard end - begin == nbytes else {
                throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(nbytes)")
            }
            planned.append(Planned(name: name, dtype: dtype, shape: shape, begin: begin, end: end, headerOffset: at, order: order))
        }

        // File order; the byte buffer must be covered exactly, in order.
        planned.sort { ($0.begin, $0.end, $0.order) < ($1.begin, $1.end, $1.order) }
        var expected = 0
        var previous: Planned?
        for p in planned {
            if p.begin < expected, let previous {
                throw CheckpointError("data_offsets [\(p.begin), \(p.end)] overlap tensor '\(previous.name)' [\(previous.begin), \(previous.end)]",
                                      file: path, offset: p.headerOffset, key: p.name)
            }
            if p.begin > expected {
                throw CheckpointError("data_offsets [\(p.begin), \(p.end)] leave a gap: bytes \(expected)..<\(p.begin) of the data area belong to no tensor",
                                      file: path, offset: p.headerOffset, key: p.name)
            }
            expected = p.end
            previous = p
        }
        if expected != dataSize {
            throw CheckpointError("tensors cover \(expected) bytes of the data area but it holds \(dataSize) (trailing bytes after the last tensor)",
                                  file: path, offset: dataStart + expected)
        }

        let source = try? SourceFile(path: path)
        let tensors = planned.map { p in
            let start = dataStart + p.begin
            let count = p.end - p.begin
            let (dtype, shape) = (p.dtype, p.shape)
            let span = source.map { FileSpan(file: $0, offset: start, count: count) }
            return TensorEntry(name: p.name, dtype: dtype, shape: shape, location: "byte \(start)", span: span) {
                let bytes = try file.copyReleasing(start, count)
                return Tensor(dtype: dtype, shape: shape, bytes: bytes)
            }
        }
        return StateDict(format: .safetensors, file: path, tensors: tensors, metadata: metadata)
    }
}
