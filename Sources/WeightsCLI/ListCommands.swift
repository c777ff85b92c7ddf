import ArgumentParser
import Weights

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the Swift models by name, with their options (set with --config KEY=VALUE), inputs and outputs.")

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func run() throws {
        // Every model is described from a meta build: shapes only, no weights allocated.
        let described = try ModelRegistry.entries.map { ($0, try $0.describe()) }
        if json {
            print(JSON.array(described.map { e, d in
                .object([("name", .string(e.name)), ("family", .string(e.family.name)), ("mapping_family", .string(d.mappingFamily)),
                         ("parameters", .int(Int64(d.parameterCount))), ("tensors", .int(Int64(d.parameterSpecs.count))),
                         ("summary", .string(e.summary)),
                         ("options", .array(e.options.map(\.json))),
                         ("inputs", .array(d.inputs.map(\.json))),
                         ("outputs", .array(d.outputs.map(\.json)))])
            }).rendered())
            return
        }
        let rows = described.map { e, d in
            [e.name, d.mappingFamily, formatCount(d.parameterCount), String(d.parameterSpecs.count),
             d.inputs.map { "\($0.name) \($0.shapeDescription)" }.joined(separator: ", "), e.summary]
        }
        print(TextTable.render(header: ["model", "family", "parameters", "tensors", "input", "architecture"], rows: rows, rightAligned: [2, 3]),
              terminator: "")
        print("\nOptions (--config KEY=VALUE on verify, bench and convert --model; defaults per model in `weights models --json`):")
        for f in ModelRegistry.families {
            print("  \(f.name): " + f.options.map { "\($0.key) (\($0.kind.typeName)) \($0.help)" }.joined(separator: "; "))
        }
    }
}

extension ModelOption {
    var json: JSON {
        var fields: [(String, JSON)] = [("key", .string(key)), ("type", .string(kind.typeName)), ("default", defaultValue.json)]
        switch kind {
        case .choice(let c): fields.append(("choices", .array(c.map { .string($0) })))
        case .int(let r), .intList(let r): fields += [("min", .int(Int64(r.lowerBound))), ("max", .int(Int64(r.upperBound)))]
        case .float(let r): fields += [("min", .double(r.lowerBound)), ("max", .double(r.upperBound))]
        case .bool, .string: break
        }
        fields.append(("help", .string(help)))
        return .object(fields)
    }
}

extension OptionValue {
    var json: JSON {
        switch self {
        case .int(let v): return .int(Int64(v))
        case .float(let v): return .double(v)
        case .bool(let v): return .bool(v)
        case .string(let v): return .string(v)
        case .intList(let v): return .array(v.map { .int(Int64($0)) })
        }
    }
}

extension TensorSpec {
    var json: JSON {
        .object([("name", .string(name)),
                  ("shape", .array(shape.map { d in
                      switch d {
                      case .fixed(let n): return .int(Int64(n))
                      case .free(let s, _): return .string(s)
                      }
                  })),
                  ("dtype", .string(dtype.rawValue))]
                 + (summary.isEmpty ? [] : [("summary", .string(summary))]))
    }
}
struct MappingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mappings", abstract: "List the mapping tables and what each maps.")

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func run() throws {
        let tables = try MappingCatalog.standard().tables
        func models(_ t: MappingTable) -> String { t.models.isEmpty ? "all \(t.family)" : t.models.map(\.text).joined(separator: ", ") }
        if json {
            print(JSON.array(tables.map { t in
                .object([("name", .string(t.name)), ("file", .string(t.file)), ("family", .string(t.family)),
                         ("models", .string(models(t))), ("auto", .bool(t.auto)), ("rules", .int(Int64(t.rules.count))),
                         ("identity", .bool(t.identity)), ("description", .string(t.description))])
            }).rendered())
            return
        }
        let rows = tables.map { [$0.name, models($0), $0.identity ? "identity + \($0.rules.count)" : String($0.rules.count), $0.description] }
        print(TextTable.render(header: ["table", "models", "rules", "maps"], rows: rows), terminator: "")
    }
}
