import Checkpoints
import Foundation

/// How the user chose a table.
public enum MappingChoice: Sendable, Equatable {
    /// Detect from the file's keys (and the model, when one is given).
    case auto
    /// Keep the checkpoint's own (flattened) names.
    case none
    /// A table by name, or a path to a table file.
    case named(String)

    public init(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "none": self = .none
        default: self = .named(text)
        }
    }
}

/// The mapping tables available: those shipped in `Mappings/` plus any the user names by path.
public struct MappingCatalog: Sendable {
    public var tables: [MappingTable]

    public init(tables: [MappingTable]) { self.tables = tables }

    /// Every `*.yaml` in `directory`, sorted by file name.
    public static func load(directory: String) throws -> MappingCatalog {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let tables = try files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
            try MappingTable.load(path: directory + "/" + $0, displayName: "Mappings/" + $0)
        }
        return MappingCatalog(tables: tables)
    }

    /// The shipped tables: those in `$WEIGHTS_MAPPINGS` if set (to try edited tables without rebuilding),
    /// else the copy of `Mappings/` compiled into the binary.
    public static func standard() throws -> MappingCatalog {
        if let dir = ProcessInfo.processInfo.environment["WEIGHTS_MAPPINGS"], !dir.isEmpty {
            return try load(directory: dir)
        }
        return MappingCatalog(tables: try BundledMappings.files.map { try MappingTable.parse($0.text, file: "Mappings/" + $0.name) })
    }

    public func table(named name: String) -> MappingTable? { tables.first { $0.name == name } }

    /// Picks the table for `sd`. `expectedKeys` (the model's keys) enables the identity fallback for files
    /// whose keys already are the model's.
    public func resolve(_ choice: MappingChoice, for sd: StateDict, model: String? = nil, family: String? = nil,
                        expectedKeys: Set<String>? = nil) throws -> MappingTable {
        switch choice {
        case .none:
            return .identity()
        case .named(let n):
            if let t = table(named: n) { return t }
            if FileManager.default.fileExists(atPath: n) { return try MappingTable.load(path: n) }
            throw MappingError("no mapping table named '\(n)' (tables: \(tables.map(\.name).joined(separator: ", "))) and no such file", kind: .unknownTable)
        case .auto:
            // With a model named, every table serving it may be picked; without, only tables marked `auto`.
            var candidates = tables.filter { ($0.auto || model != nil) && $0.serves(model: model, family: family) && $0.detects(sd) }
            // A table that names the model (`models:`) wins over family-wide tables that also recognise the file.
            if candidates.count > 1, model != nil {
                let specific = candidates.filter { !$0.models.isEmpty }
                if specific.count == 1 { candidates = specific }
            }
            if candidates.count == 1 { return candidates[0] }
            if candidates.count > 1 {
                throw MappingError("\(sd.file): several mapping tables recognise this file: \(candidates.map { "\($0.name) (\($0.file))" }.joined(separator: ", ")); choose one with --mapping", kind: .ambiguousTables)
            }
            if let expectedKeys {
                // A file (or a root of it) whose every key is a model key needs no table.
                for root in ["", "state_dict", "model"] {
                    let sub = root.isEmpty ? sd : (try? sd.subtree(root))
                    if let sub, !sub.tensors.isEmpty, sub.tensors.allSatisfy({ expectedKeys.contains($0.name) }) {
                        var t = MappingTable.identity(family: family ?? "*")
                        t.roots = [root]
                        return t
                    }
                }
            }
            let what = model.map { " for model '\($0)'" } ?? ""
            throw MappingError("\(sd.file): no mapping table recognises this file\(what); first keys: \(sd.names.prefix(5).joined(separator: ", ")). Name one with --mapping (tables: \(tables.map(\.name).joined(separator: ", "))) or use --mapping none", kind: .noTableRecognises)
        }
    }
}
