import ArgumentParser
import Weights
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors and metadata of a checkpoint without reading tensor data."
    )

    @Argument(help: "Checkpoint file (.pth/.pt/.bin, .safetensors, .h5, .keras, .npy, .npz; the format is sniffed from content), or a sharded checkpoint's index (*.index.json) or folder.")
    var file: String

    @Option(name: .long, help: "Only the subtree under this dotted path (e.g. state_dict).")
    var key: String?

    @Flag(name: .long, help: "Print one JSON document instead of a table.")
    var json = false

    @Flag(name: .long, help: "Refuse a pickle that names globals outside the allowlist (by default they become inert placeholders and are listed on stderr).")
    var strict = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes the input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    func run() throws {
        let sd = try Checkpoint.open(file, key: key, options: ReadOptions(maxOutputBytes: maxOutputBytes?.bytes))
        if let notice = try sd.checkNeutralisedGlobals(strict: strict) { printNotice(notice, kind: sd.neutralisedGlobalsAreTorchOnly ? "note" : "warning") }
        print(json ? Self.json(sd).rendered() : Self.table(sd), terminator: json ? "\n" : "")
    }

    static func json(_ sd: StateDict) -> JSON {
        .object([
            ("file", .string(sd.file)),
            ("format", .string(sd.format.rawValue)),
            ("shards", .array(sd.shards.map { .string($0) })),
            ("tensors", .array(sd.tensors.map { t in
                .object([
                    ("name", .string(t.name)),
                    ("dtype", .string(t.dtype.rawValue)),
                    ("shape", .array(t.shape.map { .int(Int64($0)) })),
                    ("bytes", .int(Int64(t.byteCount))),
                    ("location", .string(t.location)),
                ] + (unwritable(t.dtype).isEmpty ? [] : [("cannot_write_to", .array(unwritable(t.dtype).map { .string($0) }))]))
            })),
            ("unsupported", .array(sd.unsupported.map { .object([("name", .string($0.name)), ("what", .string($0.what))]) })),
            ("totals", .object([
                ("tensors", .int(Int64(sd.tensors.count))),
                ("parameters", .int(Int64(sd.totalElements))),
                ("bytes", .int(Int64(sd.totalBytes))),
            ])),
            ("metadata", .object(sd.metadata.map { ($0.name, metaJSON($0.value)) })),
        ])
    }

    /// The output formats (`convert --to`) that cannot hold tensors of `dtype`.
    static func unwritable(_ dtype: DType) -> [String] {
        (SafetensorsWriter.holds(dtype) ? [] : ["safetensors"]) + (HDF5Writer.holds(dtype) ? [] : ["h5"])
    }

    static func metaJSON(_ v: MetaValue) -> JSON {
        switch v {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let s): return s.allSatisfy({ $0.isNumber || $0 == "-" }) ? .bigInt(s) : .string(s)
        case .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .string("<\(b.count) bytes>")
        }
    }

    static func table(_ sd: StateDict) -> String {
        // Names, locations and metadata come from the file: escaped so they cannot break lines or drive the terminal.
        let e = { (s: String) in TerminalText.escape(s) }
        var out = "file: \(e(sd.file))\nformat: \(sd.format.rawValue)\n"
        if !sd.shards.isEmpty { out += "shards: \(sd.shards.count) (\(e(URL(fileURLWithPath: sd.shards[0]).lastPathComponent)) …)\n" }
        // A note column only when some tensor has no form in an output format.
        let notes = sd.tensors.map { t in unwritable(t.dtype).isEmpty ? "" : "no " + unwritable(t.dtype).joined(separator: "/") + " form" }
        let noted = notes.contains { !$0.isEmpty }
        let rows = zip(sd.tensors, notes).map { t, note in
            [e(t.name), t.dtype.rawValue, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.byteCount), e(t.location)]
                + (noted ? [note] : [])
        }
        out += TextTable.render(header: ["name", "dtype", "shape", "bytes", "location"] + (noted ? ["note"] : []), rows: rows, rightAligned: [3])
        if !sd.unsupported.isEmpty {
            out += "not readable (\(sd.unsupported.count); convert needs --skip-unsupported):\n"
            for u in sd.unsupported { out += "  \(e(u.name)): \(e(u.what))\n" }
        }
        out += "tensors: \(sd.tensors.count)  parameters: \(formatCount(sd.totalElements))  bytes: \(formatBytes(sd.totalBytes))\n"
        if !sd.metadata.isEmpty {
            out += "metadata:\n"
            for m in sd.metadata { out += "  \(e(m.name)) = \(TerminalText.escape(m.value.description, limit: 2000))\n" }
        }
        return out
    }
}

func formatCount(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@ (%ld)", v, units[u], n)
}

enum TextTable {
    static func render(header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : (i == cells.count - 1 ? c : c + pad)
            }.joined(separator: "  ") + "\n"
        }
        return line(header) + rows.map(line).joined()
    }
}
