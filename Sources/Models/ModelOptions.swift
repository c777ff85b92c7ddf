// Typed model options (`--config KEY=VALUE`, `ModelRegistry.make(name:options:)`): declared once per family with
import Foundation
// a default and help, parsed from text with one clear error that lists the valid options.

/// The type of an option.
public enum OptionKind: Sendable, Hashable, CustomStringConvertible {
    case int(ClosedRange<Int>)
    case float(ClosedRange<Double>)
    case bool
    case string
    case choice([String])
    case intList(ClosedRange<Int>)

    public var description: String {
        switch self {
        case .int(let r): return "int \(r.lowerBound)…\(r.upperBound)"
        case .float(let r): return "float \(r.lowerBound)…\(r.upperBound)"
        case .bool: return "bool"
        case .string: return "string"
        case .choice(let c): return c.joined(separator: "|")
        case .intList(let r): return "int list \(r.lowerBound)…\(r.upperBound)"
        }
    }

    /// The short type name for JSON (`int`, `float`, `bool`, `string`, `choice`, `int_list`).
    public var typeName: String {
        switch self {
        case .int: return "int"
        case .float: return "float"
        case .bool: return "bool"
        case .string: return "string"
        case .choice: return "choice"
        case .intList: return "int_list"
        }
    }

    /// Parses `text` as a value of this kind, or nil.
    public func parse(_ text: String) -> OptionValue? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch self {
        case .int(let r):
            guard let v = Int(t), r.contains(v) else { return nil }
            return .int(v)
        case .float(let r):
            guard let v = Double(t), v.isFinite, r.contains(v) else { return nil }
            return .float(v)
        case .bool:
            switch t.lowercased() {
            case "true", "1", "yes", "on": return .bool(true)
            case "false", "0", "no", "off": return .bool(false)
            default: return nil
            }
        case .string:
            return .string(t)
        case .choice(let c):
            return c.contains(t) ? .string(t) : nil
        case .intList(let r):
            var body = Substring(t)
            if body.hasPrefix("["), body.hasSuffix("]") { body = body.dropFirst().dropLast() }
            let parts = body.split(separator: ",", omittingEmptySubsequences: false)
            var out: [Int] = []
            for p in parts {
                guard let v = Int(p.trimmingCharacters(in: .whitespaces)), r.contains(v) else { return nil }
                out.append(v)
            }
            return out.isEmpty ? nil : .intList(out)
        }
    }

    func accepts(_ v: OptionValue) -> Bool {
        switch (self, v) {
        case (.int(let r), .int(let x)): return r.contains(x)
        case (.float(let r), .float(let x)): return r.contains(x)
        case (.bool, .bool), (.string, .string): return true
        case (.choice(let c), .string(let s)): return c.contains(s)
        case (.intList(let r), .intList(let xs)): return !xs.isEmpty && xs.allSatisfy(r.contains)
        default: return false
        }
    }
}

/// A typed option value.
public enum OptionValue: Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    case intList([Int])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return String(v)
        case .bool(let v): return String(v)
        case .string(let v): return v
        case .intList(let v): return v.map(String.init).joined(separator: ",")
        }
    }
}

/// One option of a model family: key, type, default and help.
public struct ModelOption: Sendable, Hashable {
    public var key: String
    public var kind: OptionKind
    public var defaultValue: OptionValue
    public var help: String

    public init(_ key: String, _ kind: OptionKind, default defaultValue: OptionValue, help: String) {
        self.key = key; self.kind = kind; self.defaultValue = defaultValue; self.help = help
    }

    /// `key (type, default value)` for messages.
    public var summary: String { "\(key) (\(kind), default \(defaultValue))" }

    /// `num_classes`: every classifier has it (fine-tuned heads).
    public static func numClasses(default n: Int = 1000, allowZero: Bool = false) -> ModelOption {
        ModelOption("num_classes", .int((allowZero ? 0 : 1)...1_000_000), default: .int(n),
                    help: "classes of the head" + (allowZero ? " (0: no head, the model returns features)" : ""))
    }
}

/// Resolved option values of one model (every declared option has a value), with typed accessors.
public struct ModelOptions: Sendable, Hashable {
    public let model: String
    public let declared: [ModelOption]
    public private(set) var values: [String: OptionValue]

    /// Defaults of `declared`, overridden by `values` (checked against each option's kind).
    public init(model: String, declared: [ModelOption], values: [String: OptionValue] = [:]) throws {
        self.model = model
        self.declared = declared
        self.values = Dictionary(declared.map { ($0.key, $0.defaultValue) }, uniquingKeysWith: { a, _ in a })
        for (k, v) in values.sorted(by: { $0.key < $1.key }) { try set(k, v) }
    }

    var validList: [String] { declared.map(\.summary) }

    /// Sets `key` to a typed value.
    public mutating func set(_ key: String, _ value: OptionValue) throws {
        guard let o = declared.first(where: { $0.key == key }) else {
            throw ModelError.unknownOption(model: model, key: key, valid: validList)
        }
        guard o.kind.accepts(value) else {
            throw ModelError.invalidOption(model: model, key: key, value: value.description, expected: o.kind.description, valid: validList)
        }
        values[key] = value
    }

    /// Sets `key` from text (`--config key=text`).
    public mutating func set(_ key: String, text: String) throws {
        guard let o = declared.first(where: { $0.key == key }) else {
            throw ModelError.unknownOption(model: model, key: key, valid: validList)
        }
        guard let v = o.kind.parse(text) else {
            throw ModelError.invalidOption(model: model, key: key, value: text, expected: o.kind.description, valid: validList)
        }
        values[key] = v
    }

    /// Applies `KEY=VALUE` assignments in order (a later one wins).
    public mutating func apply(assignments: [String]) throws {
        for a in assignments {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else {
                throw ModelError.malformedOption(model: model, text: a, valid: validList)
            }
            try set(String(a[..<eq]).trimmingCharacters(in: .whitespaces), text: String(a[a.index(after: eq)...]))
        }
    }

    private func value(_ key: String) throws -> OptionValue {
        guard let v = values[key] else { throw ModelError.unknownOption(model: model, key: key, valid: validList) }
        return v
    }

    private func mismatch(_ key: String, _ want: String) -> ModelError {
        .invalidOption(model: model, key: key, value: values[key]?.description ?? "", expected: want, valid: validList)
    }

    public func int(_ key: String) throws -> Int {
        guard case .int(let v) = try value(key) else { throw mismatch(key, "int") }
        return v
    }

    public func float(_ key: String) throws -> Double {
        switch try value(key) {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: throw mismatch(key, "float")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        guard case .bool(let v) = try value(key) else { throw mismatch(key, "bool") }
        return v
    }

    public func string(_ key: String) throws -> String {
        guard case .string(let v) = try value(key) else { throw mismatch(key, "string") }
        return v
    }

    public func intList(_ key: String) throws -> [Int] {
        guard case .intList(let v) = try value(key) else { throw mismatch(key, "int list") }
        return v
    }
}
