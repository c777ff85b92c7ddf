import ArgumentParser
import Weights
import Foundation

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two checkpoints of any formats tensor by tensor (exit 0 equal, 2 different, 1 error).",
        discussion: """
        Values are equal when |a - b| <= atol + rtol*|b| (numpy's allclose; b is the second file), compared in \
        float64 for real floats, exactly for integers and bools, as complex128 for complex tensors, and byte by byte \
        for packed float4/float6. NaN equals NaN at the same place; NaN against a number differs. Metadata \
        differences are listed but only count with --metadata.
        """
    )

    @Argument(help: "First checkpoint (any format `weights inspect` reads).")
    var a: String

    @Argument(help: "Second checkpoint; tolerances are relative to its values.")
    var b: String

    @Option(name: .long, help: "Only the subtree under this dotted path of the FIRST file (e.g. state_dict).")
    var key: String?

    @Option(name: .customLong("key-b"), help: "Only the subtree under this dotted path of the second file.")
    var keyB: String?

    @Option(name: .long, help: "Absolute tolerance.")
    var atol: Double = 0

    @Option(name: .long, help: "Relative tolerance (with atol 0 and rtol 0, values must be equal).")
    var rtol: Double = 0

    @Flag(name: .long, help: "Count metadata differences too (by default they are listed but the files can still be equal).")
    var metadata = false

    @Flag(name: .long, help: "Print one JSON document instead of a table.")
    var json = false

    @Option(name: .customLong("max-report"), help: "List at most N differing tensors (the counts always cover all).")
    var maxReport: Int = 50

    @Flag(name: .long, help: "Refuse a pickle that names globals outside the allowlist (by default they become inert placeholders and are listed on stderr).")
    var strict = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes each input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else { throw ValidationError("--atol and --rtol must be finite and >= 0") }
        guard maxReport >= 0 else { throw ValidationError("--max-report must be >= 0") }
    }

    func run() throws {
        let options = DiffOptions(atol: atol, rtol: rtol, keyA: key, keyB: keyB, metadataCounts: metadata, strictGlobals: strict,
                                  read: ReadOptions(maxOutputBytes: maxOutputBytes?.bytes))
        let report = try CheckpointDiff.compare(a, b, options: options)
        for n in report.notices { printNotice(n.text, kind: n.kind.rawValue) }
        if json {
            print(Self.json(report, maxReport: maxReport).rendered())
        } else {
            print(Self.table(report, maxReport: maxReport), terminator: "")
        }
        if !report.identical { throw CLIFailure("", code: 2) }
    }

    // MARK: Rendering

    static func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    /// One line of detail for a differing tensor.
    static func detail(_ d: TensorDiff) -> String {
        let e = { (s: String) in TerminalText.escape(s) }
        var parts: [String] = []
        switch d.status {
        case .onlyInA, .onlyInB:
            if let r = d.reason { return "not readable: " + e(r) }
            let dt = d.dtypeA ?? d.dtypeB, sh = d.shapeA ?? d.shapeB
            return "\(dt?.rawValue ?? "?") \(sh.map(shapeText) ?? "?")"
        case .notCompared:
            return e(d.reason ?? "")
        case .different:
            if d.changes.contains(.dtype) { parts.append("dtype \(d.dtypeA?.rawValue ?? "?") -> \(d.dtypeB?.rawValue ?? "?")") }
            if d.changes.contains(.shape) { parts.append("shape \(d.shapeA.map(shapeText) ?? "?") -> \(d.shapeB.map(shapeText) ?? "?")") }
            if let v = d.values, !v.withinTolerance {
                if v.domain == .bytes {
                    parts.append("\(formatCount(v.beyondTolerance)) of \(formatCount(v.elements)) bytes differ, first at byte \(v.index?.first ?? 0): \(v.a?.description ?? "?") vs \(v.b?.description ?? "?")")
                } else {
                    parts.append("max|Δ| \(ElementValueText.number(v.maxAbs ?? 0)) at \(v.index.map(shapeText) ?? "[]"): \(v.a?.description ?? "?") vs \(v.b?.description ?? "?"); \(formatCount(v.beyondTolerance)) of \(formatCount(v.elements)) beyond tolerance")
                }
            } else if let v = d.values, d.changes.contains(.dtype) {
                parts.append(v.maxAbs.map { "values equal within tolerance (max|Δ| \(ElementValueText.number($0)))" } ?? "bytes equal")
            } else if d.changes.contains(.dtype) && !d.changes.contains(.shape) {
                parts.append("values not compared (no common type)")
            }
            return parts.joined(separator: "; ")
        }
    }

    static func label(_ d: TensorDiff) -> String {
        switch d.status {
        case .onlyInA: return "only in A"
        case .onlyInB: return "only in B"
        case .notCompared: return "not compared"
        case .different: return d.changes.map(\.rawValue).joined(separator: "+")
        }
    }

    static func table(_ r: DiffReport, maxReport: Int) -> String {
        let e = { (s: String) in TerminalText.escape(s) }
        var out = "A: \(e(r.fileA)) (\(r.formatA.rawValue))\(r.options.keyA.map { ", key \(e($0))" } ?? "")\n"
        out += "B: \(e(r.fileB)) (\(r.formatB.rawValue))\(r.options.keyB.map { ", key \(e($0))" } ?? "")\n"
        out += "equal when |a-b| <= \(ElementValueText.number(r.options.atol)) + \(ElementValueText.number(r.options.rtol))*|b|\n"
        let shown = r.differences.prefix(maxReport)
        if !shown.isEmpty {
            out += TextTable.render(header: ["tensor", "change", "detail"], rows: shown.map { [e($0.name), label($0), detail($0)] })
        }
        if r.differences.count > shown.count { out += "… \(r.differences.count - shown.count) more (--max-report)\n" }
        if !r.metadata.isEmpty {
            out += "metadata differences (\(r.metadata.count))\(r.options.metadataCounts ? "" : ", not counted without --metadata"):\n"
            for m in r.metadata.prefix(maxReport) {
                let show = { (v: String?) in v.map { "'" + TerminalText.escape($0, limit: 200) + "'" } ?? "(absent)" }
                out += "  \(e(m.name)): \(show(m.a)) vs \(show(m.b))\n"
            }
            if r.metadata.count > maxReport { out += "  … \(r.metadata.count - maxReport) more\n" }
        }
        out += "tensors: \(r.common) in both (\(r.equal) equal, \(r.count(.different)) different, \(r.count(.notCompared)) not compared), "
            + "\(r.count(.onlyInA)) only in A, \(r.count(.onlyInB)) only in B"
        out += "; max|Δ| \(ElementValueText.number(r.maxAbs))\(r.maxAbsTensor.map { " (\(e($0)))" } ?? "")\n"
        out += r.identical ? "result: equal\n" : "result: different\n"
        return out
    }

    static func json(_ r: DiffReport, maxReport: Int) -> JSON {
        func shape(_ s: [Int]?) -> JSON { s.map { .array($0.map { .int(Int64($0)) }) } ?? .null }
        func value(_ v: ElementValue?) -> JSON {
            switch v {
            case nil: return .null
            case .real(let d)?: return .double(d)
            case .integer(let i)?: return Int64(exactly: i).map { .int($0) } ?? .bigInt(String(i))
            case let .complex(re, im)?: return .array([.double(re), .double(im)])
            case .byte(let b)?: return .int(Int64(b))
            }
        }
        func side(_ file: String, _ format: CheckpointFormat, _ key: String?) -> JSON {
            .object([("file", .string(file)), ("format", .string(format.rawValue)), ("key", key.map { .string($0) } ?? .null)])
        }
        let diffs: [JSON] = r.differences.prefix(maxReport).map { d in
            var fields: [(String, JSON)] = [
                ("name", .string(d.name)), ("status", .string(d.status.rawValue)),
                ("changes", .array(d.changes.map { .string($0.rawValue) })),
                ("dtype_a", d.dtypeA.map { .string($0.rawValue) } ?? .null), ("dtype_b", d.dtypeB.map { .string($0.rawValue) } ?? .null),
                ("shape_a", shape(d.shapeA)), ("shape_b", shape(d.shapeB)),
            ]
            if let v = d.values {
                fields.append(("values", .object([
                    ("compared_as", .string(v.domain.rawValue)),
                    ("elements", .int(Int64(v.elements))),
                    ("beyond_tolerance", .int(Int64(v.beyondTolerance))),
                    ("max_abs_diff", v.maxAbs.map { .double($0) } ?? .null),
                    ("index", shape(v.index)),
                    ("a", value(v.a)), ("b", value(v.b)),
                ])))
            }
            if let reason = d.reason { fields.append(("reason", .string(reason))) }
            return .object(fields)
        }
        return .object([
            ("equal", .bool(r.identical)),
            ("a", side(r.fileA, r.formatA, r.options.keyA)),
            ("b", side(r.fileB, r.formatB, r.options.keyB)),
            ("atol", .double(r.options.atol)), ("rtol", .double(r.options.rtol)),
            ("counts", .object([
                ("common", .int(Int64(r.common))), ("equal", .int(Int64(r.equal))),
                ("different", .int(Int64(r.count(.different)))), ("not_compared", .int(Int64(r.count(.notCompared)))),
                ("only_in_a", .int(Int64(r.count(.onlyInA)))), ("only_in_b", .int(Int64(r.count(.onlyInB)))),
            ])),
            ("max_abs_diff", .double(r.maxAbs)),
            ("max_abs_diff_tensor", r.maxAbsTensor.map { .string($0) } ?? .null),
            ("differences", .array(diffs)),
            ("differences_not_listed", .int(Int64(r.differences.count - diffs.count))),
            ("metadata_counts", .bool(r.options.metadataCounts)),
            ("metadata", .array(r.metadata.map { m in
                .object([("name", .string(m.name)), ("a", m.a.map { .string($0) } ?? .null), ("b", m.b.map { .string($0) } ?? .null)])
            })),
        ])
    }
}

/// Numbers as the diff prints them: shortest round-trip decimal, `nan` / `inf`.
enum ElementValueText {
    static func number(_ d: Double) -> String { ElementValue.real(d).description }
}
