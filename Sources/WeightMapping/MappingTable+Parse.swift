import Checkpoints
import Foundation
import TensorCore
import Yams

extension MappingTable {
    /// Reads and checks a table file. Errors cite `file:line`.
    public static func load(path: String, displayName: String? = nil) throws -> MappingTable {
        let shown = displayName ?? path
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw MappingError("cannot read mapping table", location: shown)
        }
        return try parse(text, file: shown)
    }

    /// Parses table YAML; `file` is used in error locations.
    public static func parse(_ yaml: String, file: String) throws -> MappingTable {
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: yaml) else { throw MappingError("empty mapping table", location: file) }
            root = n
        } catch let e as MappingError {
            throw e
        } catch let e as YamlError {
            throw MappingError("YAML syntax error: \(e)", location: file)
        }
        let p = TableParser(file: file)
        return try p.table(root)
    }
}

/// Turns the YAML node tree into a `MappingTable`, checking every field and citing lines.
private struct TableParser {
    let file: String

    func loc(_ n: Node) -> String { "\(file):\(n.mark?.line ?? 0)" }

    func fail(_ n: Node, _ msg: String) -> MappingError { MappingError(msg, location: loc(n)) }

    func mapping(_ n: Node, _ what: String) throws -> [(String, Node)] {
        guard case .mapping(let m) = n else { throw fail(n, "\(what) must be a mapping") }
        var out: [(String, Node)] = []
        for (k, v) in m {
            guard let s = k.string else { throw fail(k, "\(what): keys must be strings") }
            if out.contains(where: { $0.0 == s }) { throw fail(k, "\(what): duplicate key '\(s)'") }
            out.append((s, v))
        }
        return out
    }

    func string(_ n: Node, _ what: String) throws -> String {
        guard case .scalar(let s) = n else { throw fail(n, "\(what) must be a string") }
        return s.string
    }

    func strings(_ n: Node, _ what: String) throws -> [String] {
        if case .scalar = n { return [try string(n, what)] }
        guard case .sequence(let seq) = n else { throw fail(n, "\(what) must be a list of strings") }
        return try seq.map { try string($0, what) }
    }

    func int(_ n: Node, _ what: String) throws -> Int {
        guard let i = n.int else { throw fail(n, "\(what) must be an integer") }
        return i
    }

    func ints(_ n: Node, _ what: String) throws -> [Int] {
        guard case .sequence(let seq) = n else { throw fail(n, "\(what) must be a list of integers") }
        return try seq.map { try int($0, what) }
    }

    func bool(_ n: Node, _ what: String) throws -> Bool {
        guard let b = n.bool else { throw fail(n, "\(what) must be true or false") }
        return b
    }

    func pattern(_ n: Node, _ what: String) throws -> KeyPattern {
        do { return try KeyPattern(try string(n, what)) } catch let e as MappingError { throw e.at(loc(n)) }
    }

    func patterns(_ n: Node, _ what: String) throws -> [KeyPattern] {
        if case .scalar = n { return [try pattern(n, what)] }
        guard case .sequence(let seq) = n else { throw fail(n, "\(what) must be a pattern or a list of patterns") }
        return try seq.map { try pattern($0, what) }
    }

    func table(_ root: Node) throws -> MappingTable {
        let fields = try mapping(root, "table")
        let known: Set = ["format", "name", "family", "models", "description", "auto", "roots", "strip_prefixes",
                          "detect", "identity", "ignore", "optional", "rules"]
        for (k, v) in fields where !known.contains(k) {
            throw fail(v, "unknown table field '\(k)' (expected one of: \(known.sorted().joined(separator: ", ")))")
        }
        func field(_ k: String) -> Node? { fields.first { $0.0 == k }?.1 }
        if let f = field("format"), try int(f, "format") != 1 { throw fail(f, "unsupported table format (this version reads format 1)") }
        guard let nameNode = field("name") else { throw MappingError("table has no 'name'", location: "\(file):1") }
        guard let familyNode = field("family") else { throw MappingError("table has no 'family'", location: "\(file):1") }
        var t = MappingTable(name: try string(nameNode, "name"), file: file, family: try string(familyNode, "family"))
        if let n = field("models") { t.models = try patterns(n, "models") }
        if let n = field("description") { t.description = try string(n, "description") }
        if let n = field("auto") { t.auto = try bool(n, "auto") }
        if let n = field("roots") { t.roots = try strings(n, "roots") }
        if let n = field("strip_prefixes") { t.stripPrefixes = try strings(n, "strip_prefixes") }
        if let n = field("identity") { t.identity = try bool(n, "identity") }
        if let n = field("detect") {
            for (k, v) in try mapping(n, "detect") {
                switch k {
                case "require": t.detectRequire = try patterns(v, "detect.require")
                case "forbid": t.detectForbid = try patterns(v, "detect.forbid")
                case "format":
                    t.detectFormats = try strings(v, "detect.format")
                    for f in t.detectFormats where CheckpointFormat(rawValue: f) == nil {
                        throw fail(v, "detect.format: unknown format '\(f)' (formats: \(CheckpointFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                default: throw fail(v, "unknown detect field '\(k)' (expected require, forbid or format)")
                }
            }
        }
        if let n = field("ignore") {
            guard case .sequence(let seq) = n else { throw fail(n, "ignore must be a list of patterns") }
            t.ignores = try seq.map { MappingTable.Ignore(pattern: try pattern($0, "ignore"), location: loc($0)) }
        }
        if let n = field("optional") { t.optional = try patterns(n, "optional") }
        if let n = field("rules") {
            guard case .sequence(let seq) = n else { throw fail(n, "rules must be a list") }
            t.rules = try seq.map(rule)
        }
        try check(t)
        return t
    }

    func transforms(_ n: Node, _ what: String) throws -> [Transform] {
        guard case .sequence(let seq) = n else { throw fail(n, "\(what) must be a list of transforms") }
        return try seq.map { item in
            if case .scalar(let s) = item {
                switch s.string {
                case "transpose": return .transpose
                default: throw fail(item, "unknown transform '\(s.string)' (transforms: permute, transpose, reshape, flatten, squeeze, unsqueeze, cast)")
                }
            }
            let kv = try mapping(item, "transform")
            guard kv.count == 1, let (k, v) = kv.first else { throw fail(item, "a transform is one 'name: argument' pair") }
            switch k {
            case "permute": return .permute(try ints(v, "permute"))
            case "reshape": return .reshape(try ints(v, "reshape"))
            case "flatten":
                let d = try ints(v, "flatten")
                guard d.count == 2 else { throw fail(v, "flatten takes [start, end]") }
                return .flatten(d[0], d[1])
            case "squeeze": return .squeeze(try int(v, "squeeze"))
            case "unsqueeze": return .unsqueeze(try int(v, "unsqueeze"))
            case "cast":
                let s = try string(v, "cast")
                guard let dt = DType(rawValue: s) else { throw fail(v, "cast: unknown dtype '\(s)'") }
                return .cast(dt)
            case "transpose": return .transpose
            default: throw fail(item, "unknown transform '\(k)' (transforms: permute, transpose, reshape, flatten, squeeze, unsqueeze, cast)")
            }
        }
    }

    func rule(_ n: Node) throws -> MappingTable.Rule {
        let fields = try mapping(n, "rule")
        let known: Set = ["target", "targets", "source", "sources", "concat", "split", "each", "transforms", "after"]
        for (k, v) in fields where !known.contains(k) {
            throw fail(v, "unknown rule field '\(k)' (expected one of: \(known.sorted().joined(separator: ", ")))")
        }
        func field(_ k: String) -> Node? { fields.first { $0.0 == k }?.1 }
        var r = MappingTable.Rule(targets: [], sources: [], combine: .single, each: [], transforms: [], after: [], location: loc(n))
        if let t = field("target") { r.targets = [try pattern(t, "target")] }
        if let t = field("targets") { r.targets += try patterns(t, "targets") }
        if let s = field("source") { r.sources = [try pattern(s, "source")] }
        if let s = field("sources") { r.sources += try patterns(s, "sources") }
        if let c = field("concat") { r.combine = .concat(dim: try int(c, "concat")) }
        if let s = field("split") {
            var dim = 0
            var sections: Int?
            var sizes: [Int]?
            for (k, v) in try mapping(s, "split") {
                switch k {
                case "dim": dim = try int(v, "split.dim")
                case "sections": sections = try int(v, "split.sections")
                case "sizes": sizes = try ints(v, "split.sizes")
                default: throw fail(v, "unknown split field '\(k)' (expected dim, sections or sizes)")
                }
            }
            r.combine = .split(dim: dim, sections: sections, sizes: sizes)
        }
        if let e = field("each") { r.each = try transforms(e, "each") }
        if let t = field("transforms") { r.transforms = try transforms(t, "transforms") }
        if let a = field("after") { r.after = try transforms(a, "after") }

        guard !r.targets.isEmpty else { throw fail(n, "rule has no target") }
        guard !r.sources.isEmpty else { throw fail(n, "rule has no source") }
        switch r.combine {
        case .single:
            guard r.targets.count == 1, r.sources.count == 1 else {
                throw fail(n, "a rule with several sources needs 'concat: DIM'; several targets need 'split:'")
            }
        case .concat:
            guard r.targets.count == 1, r.sources.count >= 2 else { throw fail(n, "concat maps two or more sources onto one target") }
        case .split(_, let sections, let sizes):
            guard r.sources.count == 1, r.targets.count >= 2 else { throw fail(n, "split maps one source onto two or more targets") }
            guard (sections == nil) != (sizes == nil) else { throw fail(n, "split needs exactly one of 'sections' or 'sizes'") }
            if let sections, sections != r.targets.count { throw fail(n, "split into \(sections) sections but \(r.targets.count) targets") }
            if let sizes, sizes.count != r.targets.count { throw fail(n, "split sizes list \(sizes.count) entries but \(r.targets.count) targets") }
        }
        // Captures: every source must bind the same names, and targets may use only those.
        let names = Set(r.sources[0].captureNames)
        for s in r.sources where Set(s.captureNames) != names {
            throw fail(n, "sources bind different captures: '\(r.sources[0])' has {\(names.sorted().joined(separator: "}, {"))} but '\(s)' has {\(s.captureNames.sorted().joined(separator: "}, {"))}")
        }
        for t in r.targets {
            if t.pieces.contains(.wildcard) {
                throw fail(n, "target '\(t)' contains a wildcard; targets must name one key")
            }
            for c in t.captureNames where !names.contains(c) {
                throw fail(n, "target '\(t)' uses capture {\(c)} that no source binds")
            }
        }
        return r
    }

    /// Whole-table consistency: no two rules produce the same target pattern.
    func check(_ t: MappingTable) throws {
        var seen: [String: String] = [:]
        for r in t.rules {
            for target in r.targets {
                if let first = seen[target.text] {
                    throw MappingError("target '\(target)' is also produced by the rule at \(first)", location: r.location)
                }
                seen[target.text] = r.location
            }
        }
    }
}
