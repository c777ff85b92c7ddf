import Foundation
import Weights

/// A minimal ordered JSON value for CLI output (key order is kept as built, unlike JSONSerialization).
public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    /// An integer beyond Int64, written as its decimal digits (JSON numbers have no size limit).
    case bigInt(String)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool { a.rendered() == b.rendered() }

    public func rendered(pretty: Bool = true, indent: Int = 0) -> String {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let close = pretty ? String(repeating: "  ", count: indent) : ""
        let nl = pretty ? "\n" : ""
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .bigInt(let digits): return digits
        case .double(let d):
            if d.isNaN { return "\"NaN\"" }
            if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
            if d == d.rounded() && abs(d) < 1e15 { return String(format: "%.1f", d) }
            return "\(d)"
        case .string(let s): return JSON.quote(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            // Arrays of scalars stay on one line (shapes).
            if items.allSatisfy({ if case .array = $0 { return false }; if case .object = $0 { return false }; return true }) {
                return "[" + items.map { $0.rendered(pretty: false) }.joined(separator: ", ") + "]"
            }
            return "[" + nl + items.map { pad + $0.rendered(pretty: pretty, indent: indent + 1) }.joined(separator: "," + nl) + nl + close + "]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            let sep = pretty ? ": " : ":"
            return "{" + nl + fields.map { pad + JSON.quote($0.0) + sep + $0.1.rendered(pretty: pretty, indent: indent + 1) }
                .joined(separator: "," + nl) + nl + close + "}"
        }
    }

    static func quote(_ s: String) -> String { HeaderJSON.quote(s) }
}
