import Checkpoints
import Foundation
import TensorCore

/// A JSON value that keeps number literals as written, so `3` and `3.0` and `1180591620717411303424` stay
/// distinguishable (JSONSerialization would fold them into one NSNumber).
indirect enum JSONValue: Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool { a.description == b.description }

    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    var int: Int? { if case .number(let n) = self { return Int(n) }; return nil }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return s.debugDescription
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let f): return "{" + f.map { "\($0.0.debugDescription): \($0.1)" }.joined(separator: ", ") + "}"
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        let message: String
        let offset: Int
        var description: String { "JSON: \(message) at byte \(offset)" }
    }

    static func parse(_ data: [UInt8]) throws -> JSONValue {
        var p = Parser(b: data)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == data.count else { throw ParseError(message: "trailing data", offset: p.i) }
        return v
    }

    static func parse(file: String) throws -> JSONValue {
        try parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
    }

    private struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 }
        }

        func fail(_ m: String) -> ParseError { ParseError(message: m, offset: i) }

        mutating func literal(_ s: String, _ v: JSONValue) throws -> JSONValue {
            let u = Array(s.utf8)
            guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { throw fail("expected \(s)") }
            i += u.count
            return v
        }

        mutating func value() throws -> JSONValue {
            guard i < b.count else { throw fail("unexpected end") }
            switch b[i] {
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                i += 1
                var items: [JSONValue] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value())
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated array") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw fail("expected , or ]")
                }
            case UInt8(ascii: "{"):
                i += 1
                var fields: [(String, JSONValue)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let k = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected :") }
                    i += 1
                    skipSpace()
                    fields.append((k, try value()))
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated object") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                    throw fail("expected , or }")
                }
            default:
                let start = i
                while i < b.count, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
                guard i > start else { throw fail("unexpected character") }
                return .number(String(decoding: b[start..<i], as: UTF8.self))
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            i += 4
            return v
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < b.count else { throw fail("unterminated escape") }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v) {
                        guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate")
                        }
                        i += 2
                        let lo = try hex4()
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    guard let s = Unicode.Scalar(v) else { throw fail("bad code point") }
                    out.append(contentsOf: Array(String(Character(s)).utf8))
                default: out.append(e)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

/// One fixture's expected values, as written by Tools/make_fixtures.py (see the format at the top of that script).
struct ExpectedFixture {
    struct TensorSpec {
        let name: String
        let dtype: String
        let shape: [Int]
        /// Either the exact bytes (hex) or a SHA-256 with the first bytes for readable mismatches.
        let hex: String?
        let sha256: String?
        let headHex: String?
    }

    let path: String
    let relativePath: String
    let format: String
    let ordered: Bool
    let tensors: [TensorSpec]
    let metadata: [(String, JSONValue)]

    init(expectedFile: String, root: String) throws {
        let json = try JSONValue.parse(file: expectedFile)
        path = String(expectedFile.dropLast(".expected.json".count))
        relativePath = String(path.dropFirst(root.count + 1))
        guard let f = json["format"]?.string, let o = json["ordered"]?.bool, let ts = json["tensors"]?.array,
              case .object(let meta)? = json["metadata"] else {
            throw JSONValue.ParseError(message: "missing format/ordered/tensors/metadata in \(expectedFile)", offset: 0)
        }
        format = f
        ordered = o
        metadata = meta
        tensors = try ts.map { t in
            guard let n = t["name"]?.string, let d = t["dtype"]?.string, let s = t["shape"]?.array else {
                throw JSONValue.ParseError(message: "bad tensor record \(t) in \(expectedFile)", offset: 0)
            }
            return TensorSpec(name: n, dtype: d, shape: s.compactMap(\.int), hex: t["hex"]?.string,
                              sha256: t["sha256"]?.string, headHex: t["head_hex"]?.string)
        }
    }

    /// Every `*.expected.json` below `root`, sorted by path.
    static func all(in root: String) throws -> [ExpectedFixture] {
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: root) else { return [] }
        var files: [String] = []
        for case let rel as String in e where rel.hasSuffix(".expected.json") { files.append(root + "/" + rel) }
        return try files.sorted().map { try ExpectedFixture(expectedFile: $0, root: root) }
    }
}

/// Does a reader's metadata value match the expected JSON literal exactly (type and value)?
func metaMatches(_ v: MetaValue, _ j: JSONValue) -> Bool {
    switch (v, j) {
    case (.none, .null): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.string(let a), .string(let b)): return a == b
    case (.int(let a), .number(let lit)):
        return !lit.contains(where: { ".eE".contains($0) }) && Int64(lit) == a
    case (.bigInt(let a), .number(let lit)):
        return !lit.contains(where: { ".eE".contains($0) }) && Int64(lit) == nil && a == lit
    case (.float(let a), .number(let lit)):
        guard lit.contains(where: { ".eE".contains($0) }), let d = Double(lit) else { return false }
        return a.bitPattern == d.bitPattern
    default: return false
    }
}

func metaDescription(_ v: MetaValue) -> String {
    switch v {
    case .none: return "none"
    case .bool(let b): return "bool(\(b))"
    case .int(let i): return "int(\(i))"
    case .bigInt(let s): return "bigInt(\(s))"
    case .float(let d): return "float(\(d))"
    case .string(let s): return "string(\(s.debugDescription))"
    case .bytes(let b): return "bytes(\(hexString(b.prefix(32))))"
    }
}

func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// SHA-256 (FIPS 180-4), for the expected values of tensors too large to keep as hex.
enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ data: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var msg = data
        msg.append(0x80)
        while msg.count % 64 != 56 { msg.append(0) }
        let bits = UInt64(data.count) &* 8
        for s in stride(from: 56, through: 0, by: -8) { msg.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        var w = [UInt32](repeating: 0, count: 64)
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        for chunk in stride(from: 0, to: msg.count, by: 64) {
            for t in 0..<16 {
                let j = chunk + 4 * t
                w[t] = UInt32(msg[j]) << 24 | UInt32(msg[j + 1]) << 16 | UInt32(msg[j + 2]) << 8 | UInt32(msg[j + 3])
            }
            for t in 16..<64 {
                let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for t in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[t] &+ w[t]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return hexString(h.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32($0))) } })
    }
}
