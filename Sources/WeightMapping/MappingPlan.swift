import Checkpoints
import TensorCore

/// One model-keyed tensor produced from a checkpoint by a table: lazy, so conversion can stream.
public struct MappedTensor: Sendable {
    public var key: String
    public var sources: [String]
    /// `file:line` of the rule, or nil for identity.
    public var rule: String?
    /// The tensor under its model key, with transforms applied on load.
    public var entry: TensorEntry
}

/// A checkpoint's tensors seen through a mapping table.
public struct MappingResult: Sendable {
    public var file: String
    public var format: CheckpointFormat
    public var table: String
    public var root: String
    public var targets: [MappedTensor] = []
    public var ignored: [(key: String, rule: String)] = []
    public var unused: [String] = []
    public var metadata: [MetadataEntry] = []
    /// Model keys this file's dialect may lack (see `MappingTable.optional`).
    public var optional: [KeyPattern] = []

    /// The mapped tensors as a state dict (for writing out).
    public var stateDict: StateDict {
        StateDict(format: format, file: file, tensors: targets.map(\.entry), metadata: metadata)
    }
}

extension MappingTable {
    /// The root sub-tree this table reads from `sd` (first of `roots` that exists), with prefixes stripped.
    public func selectRoot(_ sd: StateDict) -> (root: String, dict: StateDict)? {
        for r in roots {
            let sub: StateDict
            if r.isEmpty { sub = sd } else if let s = try? sd.subtree(r) { sub = s } else { continue }
            return (r, stripPrefixes(sub))
        }
        return nil
    }

    /// Removes each of `stripPrefixes` from every key that carries it.
    func stripPrefixes(_ sd: StateDict) -> StateDict {
        var out = sd
        for p in stripPrefixes {
            for i in out.tensors.indices where out.tensors[i].name.hasPrefix(p) {
                out.tensors[i].name = String(out.tensors[i].name.dropFirst(p.count))
            }
        }
        return out
    }

    /// Whether this table recognises `sd` under one of its roots.
    public func detects(_ sd: StateDict) -> Bool {
        guard let (_, sub) = selectRoot(sd) else { return false }
        return detects(sub.names, format: sd.format.rawValue)
    }

    /// Maps `sd` through the table. With `expectedKeys`, identity passes only model keys; without, every
    /// unclaimed, unignored key passes unchanged when the table is an identity table.
    public func apply(to sd: StateDict, expectedKeys: Set<String>? = nil) throws -> MappingResult {
        guard let (root, dict) = selectRoot(sd) else {
            throw MappingError("\(sd.file): none of the table's roots (\(roots.map { $0.isEmpty ? "<root>" : $0 }.joined(separator: ", "))) exists", location: file)
        }
        var result = MappingResult(file: sd.file, format: sd.format, table: name, root: root, metadata: dict.metadata, optional: optional)
        var byName: [String: TensorEntry] = [:]
        for t in dict.tensors { byName[t.name] = t }
        var claimed = Set<String>()
        var produced: [String: String] = [:]  // target key -> rule location

        func add(_ key: String, _ sources: [String], _ rule: String?, _ entry: TensorEntry) throws {
            if let first = produced[key] {
                throw MappingError("target '\(key)' produced twice (also by \(first)) from \(sources.joined(separator: ", "))", location: rule ?? file)
            }
            produced[key] = rule ?? "identity"
            result.targets.append(MappedTensor(key: key, sources: sources, rule: rule, entry: entry))
        }

        for rule in rules {
            for t in dict.tensors {
                guard let bindings = rule.sources[0].match(t.name) else { continue }
                let sourceKeys: [String]
                do { sourceKeys = try rule.sources.map { try $0.instantiate(bindings) } } catch let e as MappingError { throw e.at(rule.location) }
                let entries = sourceKeys.compactMap { byName[$0] }
                guard entries.count == sourceKeys.count else { continue }  // incomplete group: stays unused
                let targetKeys = try rule.targets.map { try $0.instantiate(bindings) }
                let built: [TensorEntry]
                do { built = try MappingTable.build(rule, entries, targetKeys) } catch var e as MappingError {
                    e.message = "\(sd.file): " + e.message   // the input too, not only the rule
                    throw e
                }
                for (key, entry) in zip(targetKeys, built) { try add(key, sourceKeys, rule.location, entry) }
                claimed.formUnion(sourceKeys)
            }
        }
        for t in dict.tensors where !claimed.contains(t.name) {
            if identity && produced[t.name] == nil && (expectedKeys?.contains(t.name) ?? true)
                && (expectedKeys != nil || !ignores.contains(where: { $0.pattern.match(t.name) != nil })) {
                try add(t.name, [t.name], nil, t)
            } else if let ig = ignores.first(where: { $0.pattern.match(t.name) != nil }) {
                result.ignored.append((t.name, ig.location))
            } else {
                result.unused.append(t.name)
            }
        }
        return result
    }

    /// Builds the lazy target entries of one rule application, checking shapes now so errors come early.
    static func build(_ rule: Rule, _ sources: [TensorEntry], _ targets: [String]) throws -> [TensorEntry] {
        func chain(_ shape: [Int], _ ts: [Transform], _ key: String) throws -> [Int] {
            var s = shape
            for t in ts {
                do { s = try t.outputShape(s) } catch let e as MappingError {
                    throw MappingError("\(key): \(e.message)", location: rule.location)
                }
            }
            return s
        }
        func dtypeAfter(_ dt: DType, _ ts: [Transform]) -> DType {
            ts.reduce(dt) { d, t in if case .cast(let c) = t { return c } else { return d } }
        }
        @Sendable func run(_ t: Tensor, _ ts: [Transform]) throws -> Tensor {
            try ts.reduce(t) { try $1.apply($0) }
        }
        // Shapes come from the file: a zero dim must not hide an overflow among the others ([0, 2^32, 2^32]).
        for src in sources where ShapeMath.product(src.shape) == nil {
            throw MappingError("\(src.name): shape \(src.shape) holds more elements than fit in 64 bits (overflow)", location: rule.location)
        }
        let location = sources.map(\.name).joined(separator: " + ") + " (\(rule.location))"
        let each = rule.each, transforms = rule.transforms, after = rule.after
        switch rule.combine {
        case .single:
            let src = sources[0]
            let shape = try chain(try chain(src.shape, each, src.name), transforms, src.name)
            let dtype = dtypeAfter(dtypeAfter(src.dtype, each), transforms)
            return [TensorEntry(name: targets[0], dtype: dtype, shape: shape, location: location) {
                try run(try run(try src.load(), each), transforms)
            }]
        case .concat(let dim):
            let shapes = try sources.map { try chain($0.shape, each, $0.name) }
            let dtypes = Set(sources.map { dtypeAfter($0.dtype, each) })
            guard dtypes.count == 1, let dtype0 = dtypes.first else {
                throw MappingError("concat of different dtypes: \(sources.map { "\($0.name) \($0.dtype.rawValue)" }.joined(separator: ", "))", location: rule.location)
            }
            let rank = shapes[0].count
            let d = dim < 0 ? dim + rank : dim
            guard d >= 0 && d < rank, shapes.allSatisfy({ s in s.count == rank && (0..<rank).allSatisfy { $0 == d || s[$0] == shapes[0][$0] } }) else {
                throw MappingError("cannot concat along dim \(dim): shapes \(zip(sources, shapes).map { "\($0.name) \($1)" }.joined(separator: ", "))", location: rule.location)
            }
            var joined = shapes[0]
            guard let total = ShapeMath.sum(shapes.map { $0[d] }), ShapeMath.product(shapes[0].enumerated().map { $0.offset == d ? total : $0.element }) != nil else {
                throw MappingError("concat along dim \(dim) overflows: shapes \(zip(sources, shapes).map { "\($0.name) \($1)" }.joined(separator: ", "))", location: rule.location)
            }
            joined[d] = total
            let shape = try chain(joined, transforms, targets[0])
            return [TensorEntry(name: targets[0], dtype: dtypeAfter(dtype0, transforms), shape: shape, location: location) {
                let parts = try sources.map { try run(try $0.load(), each) }
                return try run(try TensorLayout.concat(parts, dim: dim), transforms)
            }]
        case .split(let dim, let sections, let sizes):
            let src = sources[0]
            let shape = try chain(try chain(src.shape, each, src.name), transforms, src.name)
            let rank = shape.count
            let d = dim < 0 ? dim + rank : dim
            guard d >= 0 && d < rank else { throw MappingError("split: dim \(dim) out of range for \(src.name) \(shape)", location: rule.location) }
            let pieceSizes: [Int]
            if let sizes { pieceSizes = sizes } else {
                let n = sections ?? targets.count
                guard shape[d] % n == 0 else {
                    throw MappingError("cannot split \(src.name) \(shape) dim \(dim) into \(n) equal sections", location: rule.location)
                }
                pieceSizes = Array(repeating: shape[d] / n, count: n)
            }
            guard ShapeMath.sum(pieceSizes) == shape[d] else {
                throw MappingError("split sizes \(pieceSizes) do not add up to \(shape[d]) (\(src.name) \(shape))", location: rule.location)
            }
            let dtype = dtypeAfter(dtypeAfter(dtypeAfter(src.dtype, each), transforms), after)
            return try targets.enumerated().map { i, key in
                var s = shape
                s[d] = pieceSizes[i]
                return TensorEntry(name: key, dtype: dtype, shape: try chain(s, after, key), location: location) {
                    let whole = try run(try run(try src.load(), each), transforms)
                    return try run(try TensorLayout.split(whole, dim: dim, sizes: pieceSizes)[i], after)
                }
            }
        }
    }
}
