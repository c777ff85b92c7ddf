import TensorCore

/// numpy `.npy` and `.npz` readers (format: numpy's `numpy/lib/format.py` documentation, "NPY format").
///
/// `.npy`: magic `\x93NUMPY`, major/minor version, header length (u16 for v1, u32 for v2/v3), then a Python
/// dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a newline,
/// then the raw array. The literal is parsed by a small parser (never evaluated).
///
/// Supported dtypes: `f8 f4 f2 i8 i4 i2 i1 u1 b1` in either byte order (big-endian data is byte-swapped on load);
/// `u2`/`u4` are widened to int64 (always exact) and `u8` is read as int64 (values above 2^63-1 are an error on
/// load). Fortran-ordered arrays are transposed to C order on load. Byte strings (`S`) and unicode strings (`U`) of
/// at most one dimension become metadata. Object (`O`), complex, structured, datetime and void arrays are errors.
///
/// `.npz`: a zip (stored or deflated) of `.npy` members; tensor names are member names without `.npy`, with
/// `/` → `.` (JAX ViT keys `Transformer/encoderblock_0/LayerNorm_0/scale` → `Transformer.encoderblock_0.LayerNorm_0.scale`).
package enum NumpyReader {
    public static func readNPY(path: String) throws -> StateDict {
        let file = try MappedFile(path: path)
        let header = try CheckpointError.withContext(file: path) {
            try NPYHeader.parse(prefix: file.bytes, total: file.size)
        }
        let name = "array"
        var sd = StateDict(format: .npy, file: path)
        let dataSize = file.size - header.dataOffset
        try CheckpointError.withContext(file: path, offset: header.dataOffset) { try header.checkDataSize(dataSize) }
        switch header.kind {
        case .strings:
            let raw = try file.read(header.dataOffset, dataSize)
            sd.metadata = try CheckpointError.withContext(file: path, offset: header.dataOffset) { try header.strings(raw, name: name) }
        case .objects:
            let flat = try CheckpointError.withContext(file: path, offset: header.dataOffset) {
                try NumpyPickle.objectArray(try file.slice(header.dataOffset, dataSize), baseOffset: header.dataOffset, name: name)
            }
            (sd.tensors, sd.metadata, sd.unsupported) = (flat.tensors, flat.metadata, flat.unsupported)
        case .tensor(let layout):
            let offset = header.dataOffset
            let span = header.isVerbatim(layout) ? (try? SourceFile(path: path)).map { FileSpan(file: $0, offset: offset, count: dataSize) } : nil
            sd.tensors = [TensorEntry(name: name, dtype: layout.dtype, shape: header.shape, location: "byte \(offset)" + layout.note,
                                      span: span) {
                let raw = try file.slice(offset, dataSize)
                defer { file.release(offset, dataSize) }
                return try CheckpointError.withContext(offset: offset) { try header.decode(raw, layout) }
            }]
        }
        return sd
    }

    /// Largest `.npy` header accepted (numpy itself refuses more than 10 000 bytes unless told otherwise).
    static let maxHeaderBytes = 64 << 10
    /// Most dimensions accepted (numpy's NPY_MAXDIMS is 64).
    static let maxRank = 64

    public static func readNPZ(path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        let zip = try ZipArchive(path: path, verifyCRC: options.verifyCRC)
        var sd = StateDict(format: .npz, file: path)
        var seen = Set<String>()
        for m in zip.members {
            if m.name.hasSuffix("/") && m.size == 0 { continue } // directory entry
            guard m.name.hasSuffix(".npy") else {
                throw CheckpointError("member is not a .npy array", file: path, member: m.name)
            }
            let name = String(m.name.dropLast(4)).replacingSlashes()
            guard seen.insert(name).inserted else {
                throw CheckpointError("two members map to the same name", file: path, member: m.name, key: name)
            }
            let header = try CheckpointError.withContext(file: path, member: m.name, key: name) { () throws -> NPYHeader in
                let first = try zip.read(m, offset: 0, count: min(m.size, 12))
                let needed = try first.withUnsafeBytes { try NPYHeader.headerEnd(prefix: $0, total: m.size) }
                let head = try zip.read(m, offset: 0, count: needed)
                return try head.withUnsafeBytes { try NPYHeader.parse(prefix: $0, total: m.size) }
            }
            let dataSize = m.size - header.dataOffset
            try CheckpointError.withContext(file: path, member: m.name, offset: header.dataOffset, key: name) {
                try header.checkDataSize(dataSize)
            }
            switch header.kind {
            case .objects:
                let raw = try zip.read(m, offset: header.dataOffset, count: dataSize)
                let flat = try CheckpointError.withContext(file: path, member: m.name, offset: header.dataOffset) {
                    try raw.withUnsafeBytes { try NumpyPickle.objectArray($0, baseOffset: header.dataOffset, name: name) }
                }
                sd.tensors += flat.tensors
                sd.metadata += flat.metadata
                sd.unsupported += flat.unsupported
            case .strings:
                let raw = try zip.read(m, offset: header.dataOffset, count: dataSize)
                sd.metadata += try CheckpointError.withContext(file: path, member: m.name, offset: header.dataOffset) {
                    try header.strings(raw, name: name)
                }
            case .tensor(let layout):
                let offset = header.dataOffset
                let span = header.isVerbatim(layout) ? zip.span(m, offset: offset, count: dataSize) : nil
                sd.tensors.append(TensorEntry(name: name, dtype: layout.dtype, shape: header.shape,
                                              location: "\(m.name) +\(offset)" + layout.note, span: span) {
                    let raw = try zip.read(m, offset: offset, count: dataSize)
                    return try CheckpointError.withContext(file: path, member: m.name, offset: offset) {
                        try raw.withUnsafeBytes { try header.decode($0, layout) }
                    }
                })
            }
        }
        return sd
    }
}

extension String {
    /// `/` → `.` (npz member paths and HDF5 paths become dotted names).
    func replacingSlashes() -> String {
        String(map { $0 == "/" ? "." : $0 })
    }
}

/// A parsed `.npy` header.
struct NPYHeader {
    /// How the bytes on disk become a tensor.
    struct Layout {
        let dtype: DType
        /// Bytes per element on disk.
        let itemSize: Int
        let bigEndian: Bool
        var note: String { bigEndian && itemSize > 1 ? " (big-endian)" : "" }
        /// Bytes swapped as one unit in big-endian data (each half of a complex number on its own).
        var swapUnit: Int { dtype.isComplex ? itemSize / 2 : itemSize }
    }
    enum Kind {
        case tensor(Layout)
        /// `S` (bytes, `unicode == false`) or `U` (UTF-32) strings of `itemSize` bytes each.
        case strings(itemSize: Int, unicode: Bool, bigEndian: Bool)
        /// `|O`: the data is a pickle of the array, read as data by the safe pickle machine (`NumpyPickle`).
        case objects
    }

    let descr: String
    let kind: Kind
    let fortranOrder: Bool
    let shape: [Int]
    let elementCount: Int
    /// Offset of the array data from the start of the `.npy` stream.
    let dataOffset: Int

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Where the header ends (= data offset), from the first 12 bytes.
    static func headerEnd(prefix b: UnsafeRawBufferPointer, total: Int) throws -> Int {
        guard b.count >= 10 else {
            throw CheckpointError("\(total) bytes is too short for a .npy header", offset: 0)
        }
        for i in 0..<6 where b[i] != magic[i] {
            throw CheckpointError("missing the \\x93NUMPY magic", offset: 0)
        }
        let major = b[6]
        func capped(_ n: Int, _ start: Int) throws -> Int {
            guard n <= NumpyReader.maxHeaderBytes else {
                throw CheckpointError("header of \(n) bytes exceeds the \(NumpyReader.maxHeaderBytes)-byte limit (numpy's own default is 10000)", offset: start - 2)
            }
            return start + n
        }
        switch major {
        case 1:
            return try capped(Int(b[8]) | Int(b[9]) << 8, 10)
        case 2, 3:
            guard b.count >= 12 else { throw CheckpointError("\(total) bytes is too short for a version \(major) .npy header", offset: 0) }
            return try capped(Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24, 12)
        default:
            throw CheckpointError("unsupported .npy format version \(major).\(b[7]) (expected 1.0, 2.0 or 3.0)", offset: 6)
        }
    }

    /// Parses the header from `b`, which holds at least the whole header; `total` is the size of the stream.
    static func parse(prefix b: UnsafeRawBufferPointer, total: Int) throws -> NPYHeader {
        let end = try headerEnd(prefix: b, total: total)
        let start = b[6] == 1 ? 10 : 12
        guard end <= total, end <= b.count else {
            throw CheckpointError("header of \(end - start) bytes runs past the end (\(total) bytes)", offset: start - 2)
        }
        // v1/v2 headers are latin-1, v3 UTF-8; both are ASCII for every dtype we accept.
        let text: String
        if b[6] == 3 {
            guard let s = String(validating: UnsafeRawBufferPointer(rebasing: b[start..<end]), as: UTF8.self) else {
                throw CheckpointError("header is not valid UTF-8", offset: start)
            }
            text = s
        } else {
            text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<end]), as: Unicode.ASCII.self)
        }
        let lit: PyLiteral
        do {
            lit = try PyLiteral.parse(text)
        } catch let e as PyLiteral.ParseError {
            throw CheckpointError("header is not a Python dict literal: \(e.message) at header character \(e.position): \(preview(text))",
                                  offset: start)
        }
        guard case .dict(let pairs) = lit else {
            throw CheckpointError("header is not a dict: \(preview(text))", offset: start)
        }
        // numpy requires exactly these keys (duplicates are refused by the literal parser: numpy keeps the last).
        for (k, _) in pairs where !["descr", "fortran_order", "shape"].contains(k) {
            throw CheckpointError("header has unexpected key '\(k)' (numpy accepts only descr, fortran_order and shape): \(preview(text))", offset: start)
        }
        func value(_ k: String) throws -> PyLiteral {
            guard let v = pairs.first(where: { $0.0 == k })?.1 else {
                throw CheckpointError("header has no '\(k)': \(preview(text))", offset: start)
            }
            return v
        }
        guard case .str(let descr) = try value("descr") else {
            throw CheckpointError("structured dtype \(try value("descr")) is not supported (only plain numeric, bool and string arrays)", offset: start)
        }
        guard case .bool(let fortran) = try value("fortran_order") else {
            throw CheckpointError("'fortran_order' is not True or False", offset: start)
        }
        guard case .tuple(let dims) = try value("shape") else {
            throw CheckpointError("'shape' is not a tuple", offset: start)
        }
        guard dims.count <= NumpyReader.maxRank else {
            throw CheckpointError("'shape' has \(dims.count) dimensions, more than the \(NumpyReader.maxRank) numpy allows (rank limit)", offset: start)
        }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d, v >= 0 else { throw CheckpointError("'shape' \(try value("shape")) has a negative or non-integer dimension", offset: start) }
            shape.append(v)
        }
        guard let count = ShapeMath.elementCount(shape) else {
            throw CheckpointError("shape \(shape) overflows", offset: start)
        }
        let kind = try parseDescr(descr, offset: start)
        return NPYHeader(descr: descr, kind: kind, fortranOrder: fortran, shape: shape, elementCount: count, dataOffset: end)
    }

    /// The header text for an error message: printable ASCII only, padding dropped, at most 100 characters.
    static func preview(_ text: String) -> String {
        var scalars = Array(text.unicodeScalars.map { (0x20..<0x7F).contains($0.value) ? Character($0) : "?" })
        while let last = scalars.last, last == " " || last == "?" { scalars.removeLast() }
        let shown = String(scalars.prefix(100))
        return "\"" + shown + (scalars.count > 100 ? "…" : "") + "\""
    }

    static func parseDescr(_ descr: String, offset: Int) throws -> Kind {
        let chars = Array(descr)
        guard chars.count >= 2, "<>|=".contains(chars[0]) else {
            throw CheckpointError("unsupported dtype '\(descr)'", offset: offset)
        }
        let big = chars[0] == ">"
        let kindChar = chars[1]
        let sizeText = String(chars[2...])
        let size = Int(sizeText) ?? -1
        func unsupported(_ why: String) -> CheckpointError {
            CheckpointError("unsupported dtype '\(descr)': \(why)", offset: offset)
        }
        switch (kindChar, size) {
        case ("f", 8): return .tensor(Layout(dtype: .float64, itemSize: 8, bigEndian: big))
        case ("f", 4): return .tensor(Layout(dtype: .float32, itemSize: 4, bigEndian: big))
        case ("f", 2): return .tensor(Layout(dtype: .float16, itemSize: 2, bigEndian: big))
        case ("i", 8): return .tensor(Layout(dtype: .int64, itemSize: 8, bigEndian: big))
        case ("i", 4): return .tensor(Layout(dtype: .int32, itemSize: 4, bigEndian: big))
        case ("i", 2): return .tensor(Layout(dtype: .int16, itemSize: 2, bigEndian: big))
        case ("i", 1): return .tensor(Layout(dtype: .int8, itemSize: 1, bigEndian: false))
        case ("u", 1): return .tensor(Layout(dtype: .uint8, itemSize: 1, bigEndian: false))
        case ("b", 1): return .tensor(Layout(dtype: .bool, itemSize: 1, bigEndian: false))
        case ("u", 2): return .tensor(Layout(dtype: .uint16, itemSize: 2, bigEndian: big))
        case ("u", 4): return .tensor(Layout(dtype: .uint32, itemSize: 4, bigEndian: big))
        case ("u", 8): return .tensor(Layout(dtype: .uint64, itemSize: 8, bigEndian: big))
        case ("c", 8): return .tensor(Layout(dtype: .complex64, itemSize: 8, bigEndian: big))
        case ("c", 16): return .tensor(Layout(dtype: .complex128, itemSize: 16, bigEndian: big))
        case ("S", let n) where n >= 0: return .strings(itemSize: n, unicode: false, bigEndian: big)
        case ("U", let n) where n >= 0 && n <= Int.max / 4: return .strings(itemSize: n * 4, unicode: true, bigEndian: big)
        case ("O", _) where sizeText.isEmpty || size == 8: return .objects
        case ("O", _): throw unsupported("object arrays hold 8-byte references")
        case ("c", _): throw unsupported("only c8 (complex64) and c16 (complex128) complex numbers are supported")
        case ("V", _): throw unsupported("raw void data (e.g. ml_dtypes bfloat16 saved by numpy) has no defined element type")
        case ("M", _), ("m", _): throw unsupported("datetime arrays are not supported")
        default: throw unsupported("only f8 f4 f2 c8 c16 i8 i4 i2 i1 u1 u2 u4 u8 b1 and S/U strings are supported")
        }
    }

    /// The data must be exactly `elementCount × itemSize` bytes.
    func checkDataSize(_ available: Int) throws {
        let item: Int
        switch kind {
        case .tensor(let l): item = l.itemSize
        case .strings(let n, _, _): item = n
        case .objects: return   // a pickle of any length
        }
        let (need, o) = elementCount.multipliedReportingOverflow(by: item)
        guard !o else { throw CheckpointError("shape \(shape) of '\(descr)' overflows") }
        if available < need {
            throw CheckpointError("array data is truncated: '\(descr)' \(shape) needs \(need) bytes but \(available) remain")
        }
        if available > need {
            throw CheckpointError("array data has \(available) bytes but '\(descr)' \(shape) needs \(need)")
        }
    }

    /// Whether the bytes on disk are already the tensor's bytes (C order, little-endian, no widening), so that
    /// writers may copy them file-to-file.
    func isVerbatim(_ l: Layout) -> Bool {
        !(l.bigEndian && l.itemSize > 1) && !(fortranOrder && shape.count > 1)
    }

    /// Bytes on disk → C-ordered little-endian tensor.
    func decode(_ raw: UnsafeRawBufferPointer, _ l: Layout) throws -> Tensor {
        var out = Array(raw)
        if l.bigEndian && l.swapUnit > 1 { Self.byteSwap(&out, itemSize: l.swapUnit) }
        let t = Tensor(dtype: l.dtype, shape: shape, bytes: out)
        return fortranOrder ? TensorLayout.fortranToC(t) : t
    }

    func decode(_ raw: [UInt8], _ l: Layout) throws -> Tensor {
        try raw.withUnsafeBytes { try decode($0, l) }
    }

    static func byteSwap(_ b: inout [UInt8], itemSize: Int) {
        b.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + itemSize <= p.count {
                var lo = i, hi = i + itemSize - 1
                while lo < hi { p.swapAt(lo, hi); lo += 1; hi -= 1 }
                i += itemSize
            }
        }
    }

    /// Strings of a 0-d or 1-d `S`/`U` array as metadata (`name`, or `name.0`, `name.1`, …).
    func strings(_ raw: [UInt8], name: String) throws -> [MetadataEntry] {
        guard case .strings(let item, let unicode, let big) = kind else { return [] }
        guard shape.count <= 1 else {
            throw CheckpointError("string array '\(descr)' with shape \(shape) is not supported (only 0-d and 1-d string arrays become metadata)", key: name)
        }
        guard raw.count <= 16 << 20 else {
            throw CheckpointError("string array of \(raw.count) bytes is too large to keep as metadata", key: name)
        }
        // Zero-width items ('|S0') cost no bytes, so the element count needs its own bound.
        guard elementCount <= 1 << 20 else {
            throw CheckpointError("string array of \(elementCount) elements is too large to keep as metadata (limit \(1 << 20))", key: name)
        }
        var values: [String] = []
        for i in 0..<elementCount {
            let chunk = raw[(i * item)..<((i + 1) * item)]
            if unicode {
                var scalars = String.UnicodeScalarView()
                var j = chunk.startIndex
                while j + 4 <= chunk.endIndex {
                    var v = UInt32(chunk[j]) | UInt32(chunk[j + 1]) << 8 | UInt32(chunk[j + 2]) << 16 | UInt32(chunk[j + 3]) << 24
                    if big { v = v.byteSwapped }
                    if v == 0 { break }
                    guard let u = Unicode.Scalar(v) else {
                        throw CheckpointError("string element \(i) holds an invalid code point \(v)", key: name)
                    }
                    scalars.append(u)
                    j += 4
                }
                values.append(String(scalars))
            } else {
                let bytes = chunk.prefix { $0 != 0 }
                values.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        if shape.isEmpty { return [MetadataEntry(name: name, value: .string(values.first ?? ""))] }
        return values.enumerated().map { MetadataEntry(name: "\(name).\($0.offset)", value: .string($0.element)) }
    }
}

/// The Python literals that appear in `.npy` headers: strings, ints, True/False/None, tuples, lists, dicts.
enum PyLiteral: CustomStringConvertible {
    case str(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PyLiteral])
    case list([PyLiteral])
    case dict([(String, PyLiteral)])

    struct ParseError: Error {
        let message: String
        let position: Int
    }

    var description: String {
        switch self {
        case .str(let s): return "'\(s)'"
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .tuple(let t): return "(" + t.map(\.description).joined(separator: ", ") + (t.count == 1 ? ",)" : ")")
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.map { "'\($0.0)': \($0.1)" }.joined(separator: ", ") + "}"
        }
    }

    static func parse(_ text: String) throws(ParseError) -> PyLiteral {
        var p = Parser(c: Array(text.unicodeScalars))
        p.skip()
        let v = try p.value(depth: 0)
        p.skip()
        guard p.i == p.c.count else { throw ParseError(message: "unexpected text after the literal", position: p.i) }
        return v
    }

    private struct Parser {
        let c: [Unicode.Scalar]
        var i = 0

        mutating func skip() {
            while i < c.count, c[i] == " " || c[i] == "\n" || c[i] == "\t" || c[i] == "\r" { i += 1 }
        }

        mutating func value(depth: Int) throws(ParseError) -> PyLiteral {
            guard depth < 32 else { throw ParseError(message: "nested too deeply", position: i) }
            guard i < c.count else { throw ParseError(message: "unexpected end", position: i) }
            switch c[i] {
            case "'", "\"": return .str(try string())
            case "(": i += 1; return .tuple(try sequence(close: ")", depth: depth))
            case "[": i += 1; return .list(try sequence(close: "]", depth: depth))
            case "{":
                i += 1
                var pairs: [(String, PyLiteral)] = []
                while true {
                    skip()
                    guard i < c.count else { throw ParseError(message: "unterminated dict", position: i) }
                    if c[i] == "}" { i += 1; return .dict(pairs) }
                    guard c[i] == "'" || c[i] == "\"" else { throw ParseError(message: "dict key is not a string", position: i) }
                    let keyAt = i
                    let k = try string()
                    guard !pairs.contains(where: { $0.0 == k }) else {
                        throw ParseError(message: "duplicate key '\(k)' (numpy would take the last, so readers disagree)", position: keyAt)
                    }
                    skip()
                    guard i < c.count, c[i] == ":" else { throw ParseError(message: "expected ':'", position: i) }
                    i += 1
                    skip()
                    pairs.append((k, try value(depth: depth + 1)))
                    skip()
                    guard i < c.count else { throw ParseError(message: "unterminated dict", position: i) }
                    if c[i] == "," { i += 1 } else if c[i] != "}" { throw ParseError(message: "expected ',' or '}'", position: i) }
                }
            case "0"..."9", "-", "+":
                let start = i
                if c[i] == "-" || c[i] == "+" { i += 1 }
                var digits = ""
                while i < c.count, ("0"..."9").contains(c[i]) { digits.unicodeScalars.append(c[i]); i += 1 }
                if i < c.count, c[i] == "L" || c[i] == "l" { i += 1 } // Python 2 long
                guard !digits.isEmpty, let v = Int(digits) else { throw ParseError(message: "integer out of range or malformed", position: start) }
                return .int(c[start] == "-" ? -v : v)
            default:
                for (word, v) in [("True", PyLiteral.bool(true)), ("False", .bool(false)), ("None", .none)] {
                    let w = Array(word.unicodeScalars)
                    if i + w.count <= c.count, Array(c[i..<(i + w.count)]) == w { i += w.count; return v }
                }
                let ch = c[i]
                let shown = (0x21..<0x7F).contains(ch.value) ? "'\(ch)'" : "U+" + String(ch.value, radix: 16, uppercase: true)
                throw ParseError(message: "unexpected character \(shown)", position: i)
            }
        }

        mutating func sequence(close: Unicode.Scalar, depth: Int) throws(ParseError) -> [PyLiteral] {
            var items: [PyLiteral] = []
            while true {
                skip()
                guard i < c.count else { throw ParseError(message: "unterminated sequence", position: i) }
                if c[i] == close { i += 1; return items }
                items.append(try value(depth: depth + 1))
                skip()
                guard i < c.count else { throw ParseError(message: "unterminated sequence", position: i) }
                if c[i] == "," { i += 1 } else if c[i] != close { throw ParseError(message: "expected ',' or '\(close)'", position: i) }
            }
        }

        mutating func string() throws(ParseError) -> String {
            let quote = c[i]
            let start = i
            i += 1
            var s = String.UnicodeScalarView()
            while i < c.count {
                let ch = c[i]
                if ch == quote { i += 1; return String(s) }
                if ch == "\\" {
                    // Python's escapes (\x41, \N{…}, \u…, octal) are not re-implemented: no valid header needs one.
                    throw ParseError(message: "escape sequence in a string (not used by numpy headers)", position: i)
                } else {
                    s.append(ch)
                }
                i += 1
            }
            throw ParseError(message: "unterminated string", position: start)
        }
    }
}
