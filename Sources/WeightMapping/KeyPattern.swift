/// A key pattern such as `blocks.{i}.attn.qkv.weight` or `*.num_batches_tracked`.
///
/// - `{name}` captures one or more characters other than `.` (one dotted segment or part of one:
///   `encoderblock_{i}`); the same name must capture the same text everywhere in a rule.
/// - `{name*}` captures one or more characters including dots (a whole sub-path).
/// - `*` matches any run of characters, dots included, without capturing.
/// Everything else is literal.
public struct KeyPattern: Sendable, Hashable, CustomStringConvertible {
    enum Piece: Sendable, Hashable {
        case literal(String)
        case capture(String, crossesDots: Bool)
        case wildcard
    }

    public let text: String
    let pieces: [Piece]

    public init(_ text: String) throws {
        self.text = text
        var pieces: [Piece] = []
        var literal = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == "{" {
                guard let close = text[i...].firstIndex(of: "}") else {
                    throw MappingError("pattern '\(text)': '{' without a closing '}'")
                }
                var name = String(text[text.index(after: i)..<close])
                let crosses = name.hasSuffix("*")
                if crosses { name.removeLast() }
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw MappingError("pattern '\(text)': bad capture name '{\(name)}'")
                }
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                if let last = pieces.last, case .literal = last {} else if !pieces.isEmpty {
                    throw MappingError("pattern '\(text)': two captures or wildcards must be separated by literal text")
                }
                pieces.append(.capture(name, crossesDots: crosses))
                i = text.index(after: close)
            } else if c == "*" {
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                if let last = pieces.last, case .literal = last {} else if !pieces.isEmpty {
                    throw MappingError("pattern '\(text)': two captures or wildcards must be separated by literal text")
                }
                pieces.append(.wildcard)
                i = text.index(after: i)
            } else if c == "}" {
                throw MappingError("pattern '\(text)': '}' without an opening '{'")
            } else {
                literal.append(c)
                i = text.index(after: i)
            }
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        self.pieces = pieces
    }

    public var description: String { text }

    /// Names of the captures, in order of appearance.
    public var captureNames: [String] {
        pieces.compactMap { if case .capture(let n, _) = $0 { return n } else { return nil } }
    }

    public var isLiteral: Bool { pieces.allSatisfy { if case .literal = $0 { return true } else { return false } } }

    /// Matches `key`, returning the captured values (empty for a pattern without captures), or nil.
    /// With `bindings`, captures already bound must capture the same text.
    public func match(_ key: String, bindings: [String: String] = [:]) -> [String: String]? {
        let k = Array(key.utf8)
        var out = bindings
        return matchFrom(0, k, 0, &out) ? out : nil
    }

    private func matchFrom(_ p: Int, _ k: [UInt8], _ pos: Int, _ caps: inout [String: String]) -> Bool {
        if p == pieces.count { return pos == k.count }
        switch pieces[p] {
        case .literal(let lit):
            let l = Array(lit.utf8)
            guard pos + l.count <= k.count, Array(k[pos..<pos + l.count]) == l else { return false }
            return matchFrom(p + 1, k, pos + l.count, &caps)
        case .wildcard:
            for end in stride(from: k.count, through: pos, by: -1) where matchFrom(p + 1, k, end, &caps) { return true }
            return false
        case .capture(let name, let crosses):
            if let bound = caps[name] {
                let b = Array(bound.utf8)
                guard pos + b.count <= k.count, Array(k[pos..<pos + b.count]) == b else { return false }
                return matchFrom(p + 1, k, pos + b.count, &caps)
            }
            var end = pos
            var limit = pos
            while limit < k.count && (crosses || k[limit] != UInt8(ascii: ".")) { limit += 1 }
            // Try the shortest capture first so `{i}_x` style patterns bind minimally; backtrack as needed.
            end = pos + 1
            while end <= limit {
                caps[name] = String(decoding: k[pos..<end], as: UTF8.self)
                if matchFrom(p + 1, k, end, &caps) { return true }
                end += 1
            }
            caps[name] = nil
            return false
        }
    }

    /// The key this pattern names under `bindings`; throws if a capture is unbound or a wildcard is present.
    public func instantiate(_ bindings: [String: String]) throws -> String {
        var s = ""
        for piece in pieces {
            switch piece {
            case .literal(let l): s += l
            case .capture(let n, _):
                guard let v = bindings[n] else { throw MappingError("pattern '\(text)': capture {\(n)} is not bound by the source") }
                s += v
            case .wildcard: throw MappingError("pattern '\(text)': a target pattern cannot contain '*'")
            }
        }
        return s
    }
}
