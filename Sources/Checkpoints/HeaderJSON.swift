/// A small, strict JSON reader for untrusted headers (safetensors). Unlike Foundation's JSONSerialization it keeps
/// object key order, reports duplicate keys, records the byte offset of every value for error messages, keeps
/// numbers as their exact text (no silent rounding of 2^63-sized integers) and caps nesting depth.
package enum HeaderJSON {
    indirect enum Value {
        case null
        case bool(Bool)
        /// The number exactly as written.
        case number(String)
        case string(String)
        case array([Node])
        case object([(key: String, node: Node)])

        var kind: String {
            switch self {
            case .null: return "null"
            case .bool: return "a boolean"
            case .number: return "a number"
            case .string: return "a string"
            case .array: return "an array"
            case .object: return "an object"
            }
        }
    }

    /// A value and the absolute byte offset where it starts.
    struct Node {
        let value: Value
        let offset: Int

        /// The value as a non-negative or negative Int, if it is an integer literal that fits.
        var int: Int? {
            guard case .number(let text) = value else { return nil }
            guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
            return Int(text)
        }
    }

    struct ParseError: Error {
        let message: String
        let offset: Int
    }

    static let maxDepth = 64

    /// Parses `bytes` (one JSON document, surrounding whitespace allowed). `base` is the absolute offset of
    /// `bytes[0]` in the file, used in error offsets.
    /// - Parameter maxArrayItems: longest array accepted (safetensors needs shapes of rank ≤ 64 and [begin, end]),
    ///   so a header cannot make the parser build millions of nodes for one shape.
    /// - Parameter maxValues: most values (of any kind) in the document, which bounds the parse's memory.
    static func parse(_ bytes: UnsafeRawBufferPointer, base: Int, maxArrayItems: Int = Int.max, maxValues: Int = Int.max) throws(ParseError) -> Node {
        var p = Parser(b: bytes, base: base, maxArrayItems: maxArrayItems, maxValues: maxValues)
        p.skipWhitespace()
        let node = try p.value(depth: 0)
        p.skipWhitespace()
        if p.i < bytes.count {
            throw ParseError(message: "unexpected data after the JSON document", offset: base + p.i)
        }
        return node
    }

    private struct Parser {
        let b: UnsafeRawBufferPointer
        let base: Int
        let maxArrayItems: Int
        let maxValues: Int
        var values = 0
        var i = 0

        init(b: UnsafeRawBufferPointer, base: Int, maxArrayItems: Int, maxValues: Int) {
            self.b = b; self.base = base; self.maxArrayItems = maxArrayItems; self.maxValues = maxValues
        }

        func fail(_ message: String, at pos: Int? = nil) -> ParseError {
            ParseError(message: message, offset: base + (pos ?? i))
        }

        mutating func skipWhitespace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ literal: String) throws(ParseError) {
            for c in literal.utf8 {
                guard i < b.count, b[i] == c else { throw fail("invalid JSON: expected '\(literal)'") }
                i += 1
            }
        }

        mutating func value(depth: Int) throws(ParseError) -> Node {
            guard depth <= HeaderJSON.maxDepth else { throw fail("invalid JSON: nested deeper than \(HeaderJSON.maxDepth) levels") }
            guard i < b.count else { throw fail("invalid JSON: unexpected end of header") }
            values += 1
            guard values <= maxValues else { throw fail("header holds more than \(maxValues) JSON values") }
            let start = i
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(key: String, node: Node)] = []
                var seen = Set<String>()
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return Node(value: .object(members), offset: base + start) }
                while true {
                    skipWhitespace()
                    let keyPos = i
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("invalid JSON: expected a string key") }
                    let key = try string()
                    guard seen.insert(key).inserted else { throw fail("invalid JSON: duplicate key '\(key)'", at: keyPos) }
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    let v = try value(depth: depth + 1)
                    members.append((key, Node(value: v.value, offset: base + keyPos)))
                    skipWhitespace()
                    guard i < b.count else { throw fail("invalid JSON: unexpected end of header inside an object") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; break }
                    throw fail("invalid JSON: expected ',' or '}'")
                }
                return Node(value: .object(members), offset: base + start)
            case UInt8(ascii: "["):
                i += 1
                var items: [Node] = []
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return Node(value: .array(items), offset: base + start) }
                while true {
                    skipWhitespace()
                    guard items.count < maxArrayItems else {
                        throw fail("array of more than \(maxArrayItems) items (shapes have rank at most \(maxArrayItems))", at: start)
                    }
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard i < b.count else { throw fail("invalid JSON: unexpected end of header inside an array") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; break }
                    throw fail("invalid JSON: expected ',' or ']'")
                }
                return Node(value: .array(items), offset: base + start)
            case UInt8(ascii: "\""):
                return Node(value: .string(try string()), offset: base + start)
            case UInt8(ascii: "t"):
                try expect("true"); return Node(value: .bool(true), offset: base + start)
            case UInt8(ascii: "f"):
                try expect("false"); return Node(value: .bool(false), offset: base + start)
            case UInt8(ascii: "n"):
                try expect("null"); return Node(value: .null, offset: base + start)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return Node(value: .number(try number()), offset: base + start)
            default:
                throw fail("invalid JSON: unexpected character \(describe(b[i]))")
            }
        }

        func describe(_ c: UInt8) -> String {
            (0x20..<0x7F).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "0x" + String(c, radix: 16)
        }

        mutating func number() throws(ParseError) -> String {
            let start = i
            if b[i] == UInt8(ascii: "-") { i += 1 }
            func digits(_ p: inout Parser) -> Int {
                let s = p.i
                while p.i < p.b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p.b[p.i]) { p.i += 1 }
                return p.i - s
            }
            guard digits(&self) > 0 else { throw fail("invalid JSON: malformed number", at: start) }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard digits(&self) > 0 else { throw fail("invalid JSON: malformed number", at: start) }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard digits(&self) > 0 else { throw fail("invalid JSON: malformed number", at: start) }
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("invalid JSON: truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw fail("invalid JSON: bad \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws(ParseError) -> String {
            let start = i
            i += 1 // opening quote
            var out: [UInt8] = []
            var runStart = i
            while true {
                guard i < b.count else { throw fail("invalid JSON: unterminated string", at: start) }
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<i]))
                    i += 1
                    break
                }
                if c < 0x20 { throw fail("invalid JSON: control character in string") }
                if c != UInt8(ascii: "\\") { i += 1; continue }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<i]))
                i += 1
                guard i < b.count else { throw fail("invalid JSON: unterminated string", at: start) }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                            throw fail("invalid JSON: unpaired surrogate in \\u escape")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid JSON: unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid JSON: \\u escape is not a Unicode scalar") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw fail("invalid JSON: unknown escape '\\\(describe(e))'")
                }
                runStart = i
            }
            guard let s = String(validating: out, as: UTF8.self) else {
                throw fail("invalid JSON: string is not valid UTF-8", at: start)
            }
            return s
        }
    }

    // MARK: writing

    /// `s` as a JSON string literal (quotes included); non-ASCII is written as UTF-8.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
