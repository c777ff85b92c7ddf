import ArgumentParser
import Weights

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the Swift models by upstream name.")

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func run() throws {
        let entries = ModelRegistry.entries
        if json {
            print(JSON.array(entries.map { e in
                .object([("name", .string(e.name)), ("family", .string(e.architecture.mappingFamily)),
                         ("parameters", .int(Int64(e.parameterCount))), ("tensors", .int(Int64(e.parameterSpecs.count))),
                         ("summary", .string(e.summary))])
            }).rendered())
            return
        }
        let rows = entries.map { [$0.name, $0.architecture.mappingFamily, formatCount($0.parameterCount), String($0.parameterSpecs.count), $0.summary] }
        print(TextTable.render(header: ["model", "family", "parameters", "tensors", "architecture"], rows: rows, rightAligned: [2, 3]), terminator: "")
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
