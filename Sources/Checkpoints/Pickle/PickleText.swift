/// Decoding of the text and integer encodings pickle uses (protocol 0 literals, LONG1/LONG4 two's complement).
enum PickleText {
    static func trim(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }

    static func utf8(_ b: UnsafeRawBufferPointer) -> String {
        String(decoding: b, as: UTF8.self)
    }

    /// Python 2 `str` payloads: UTF-8 when valid (what torch.load's `encoding="utf-8"` does), else Latin-1.
    static func utf8OrLatin1<C: Collection>(_ b: C) -> String where C.Element == UInt8 {
        if let s = String(validating: b, as: UTF8.self) { return s }
        var out = String.UnicodeScalarView()
        for c in b { out.append(Unicode.Scalar(c)) }
        return String(out)
    }

    /// An integer literal of INT / LONG: Int64 when it fits, otherwise its decimal digits.
    static func decimalInteger(_ text: String) -> PickleValue? {
        let s = trim(text)
        if let i = Int64(s) { return .int(i) }
        var digits = Substring(s)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let trimmed = digits.drop(while: { $0 == "0" })
        return .bigInt((negative ? "-" : "") + (trimmed.isEmpty ? "0" : String(trimmed)))
    }

    /// Python's float() for the FLOAT opcode (repr text, including inf and nan).
    static func pythonFloat(_ text: String) -> Double? {
        let s = trim(text)
        switch s.lowercased() {
        case "inf", "+inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: return Double(s)
        }
    }

    /// Largest LONG1/LONG4 payload converted to decimal; longer ones are kept as a size description
    /// (decimal conversion is quadratic and no checkpoint needs such numbers).
    static let maxDecimalLongBytes = 1024

    /// A little-endian two's-complement integer (LONG1 / LONG4).
    static func twosComplement(_ b: UnsafeRawBufferPointer) -> PickleValue {
        let n = b.count
        if n == 0 { return .int(0) }
        let negative = b[n - 1] & 0x80 != 0
        // Fits in Int64 when every byte above the 8th is pure sign extension of bit 63.
        let signByte: UInt8 = negative ? 0xFF : 0x00
        var fits = true
        if n > 8 {
            for i in 8..<n where b[i] != signByte { fits = false; break }
            if fits, (b[7] & 0x80 != 0) != negative { fits = false }
        }
        if fits {
            var v: UInt64 = negative ? ~0 : 0
            for i in stride(from: min(n, 8) - 1, through: 0, by: -1) { v = (v << 8) | UInt64(b[i]) }
            if n < 8 {
                // Sign-extend from n bytes.
                let shift = UInt64(64 - 8 * n)
                v = UInt64(bitPattern: (Int64(bitPattern: v << shift)) >> Int64(shift))
            }
            return .int(Int64(bitPattern: v))
        }
        guard n <= maxDecimalLongBytes else { return .bigInt("<\(n)-byte integer>") }
        // Magnitude, little-endian bytes.
        var mag = Array(b)
        if negative {
            var carry = 1
            for i in 0..<n {
                let x = Int(~mag[i]) + carry
                mag[i] = UInt8(x & 0xFF)
                carry = x >> 8
            }
        }
        // Repeated division by 10^9 of the base-256 magnitude (most significant first).
        var be = Array(mag.reversed())
        var chunks: [UInt32] = []
        while be.contains(where: { $0 != 0 }) {
            var rem: UInt64 = 0
            var next: [UInt8] = []
            next.reserveCapacity(be.count)
            for byte in be {
                let cur = (rem << 8) | UInt64(byte)
                let q = cur / 1_000_000_000
                rem = cur % 1_000_000_000
                if !next.isEmpty || q != 0 { next.append(UInt8(q)) }
            }
            chunks.append(UInt32(rem))
            be = next
        }
        var s = negative ? "-" : ""
        for (i, c) in chunks.reversed().enumerated() {
            let d = String(c)
            s += i == 0 ? d : String(repeating: "0", count: 9 - d.count) + d
        }
        return .bigInt(chunks.isEmpty ? "0" : s)
    }

    /// The STRING opcode's argument: a Python 2 repr of a str, quoted with ' or ".
    static func quotedString(_ b: UnsafeRawBufferPointer) -> [UInt8]? {
        guard b.count >= 2, let q = b.first, q == UInt8(ascii: "'") || q == UInt8(ascii: "\""), b[b.count - 1] == q else { return nil }
        let body = b[1..<(b.count - 1)]
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = body.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        while i < body.endIndex {
            let c = body[i]
            i += 1
            guard c == UInt8(ascii: "\\"), i < body.endIndex else { out.append(c); continue }
            let e = body[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "x"):
                guard i + 1 < body.endIndex, let h = hex(body[i]), let l = hex(body[i + 1]) else { return nil }
                out.append(h << 4 | l)
                i += 2
            case 0x30...0x37:
                var v = Int(e - 0x30)
                var k = 0
                while k < 2, i < body.endIndex, (0x30...0x37).contains(body[i]) {
                    v = v * 8 + Int(body[i] - 0x30); i += 1; k += 1
                }
                out.append(UInt8(v & 0xFF))
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            default: out.append(c); out.append(e)
            }
        }
        return out
    }

    /// The UNICODE opcode's argument: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, other bytes Latin-1).
    static func rawUnicodeEscape(_ b: UnsafeRawBufferPointer) -> String {
        var out = String.UnicodeScalarView()
        var i = 0
        func hexValue(_ from: Int, _ count: Int) -> UInt32? {
            guard from + count <= b.count else { return nil }
            var v: UInt32 = 0
            for k in from..<(from + count) {
                let c = b[k]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                default: return nil
                }
                v = v << 4 | d
            }
            return v
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\\"), i + 1 < b.count {
                let kind = b[i + 1]
                let count = kind == UInt8(ascii: "u") ? 4 : kind == UInt8(ascii: "U") ? 8 : 0
                if count > 0, let v = hexValue(i + 2, count), let scalar = Unicode.Scalar(v) {
                    out.append(scalar)
                    i += 2 + count
                    continue
                }
            }
            out.append(Unicode.Scalar(c))
            i += 1
        }
        return String(out)
    }
}
