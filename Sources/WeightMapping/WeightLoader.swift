import Checkpoints
import TensorCore

/// The result of loading files onto a model's expected parameters: the values to set, and the report.
public struct LoadResult: Sendable {
    /// Values for the model, in the model's parameter order (only keys the files provided).
    public var values: [(key: String, tensor: Tensor)]
    public var report: LoadReport
}

/// Loads mapped checkpoints onto a list of expected parameters under a policy. Knows nothing of models.
public enum WeightLoader {
    /// Applies `results` (one per file, in order) to `expected`.
    ///
    /// A key provided by two files with different values is an error naming both; identical values are noted.
    /// Returns the values and the complete report; throws a `MappingError` carrying the report when the policy
    /// is violated.
    public static func load(_ results: [MappingResult], expected: [ExpectedParameter], policy: LoadPolicy) throws -> LoadResult {
        var report = LoadReport(policy: policy)
        let index = Dictionary(expected.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { a, _ in a })
        var provided: [String: (tensor: Tensor, file: String, sources: [String])] = [:]
        var unusedKeys: [(key: String, file: String)] = []

        for r in results {
            report.files.append(.init(file: r.file, format: r.format.rawValue, table: r.table, root: r.root))
            report.ignored += r.ignored.map { .init(key: $0.key, file: r.file, rule: $0.rule) }
            unusedKeys += r.unused.map { ($0, r.file) }
            for t in r.targets {
                guard let i = index[t.key] else {
                    unusedKeys.append((t.sources == [t.key] ? t.key : "\(t.key) (from \(t.sources.joined(separator: " + ")))", r.file))
                    continue
                }
                let want = expected[i]
                guard t.entry.shape == want.shape else {
                    report.mismatched.append(.init(key: t.key, expected: want.shape, found: t.entry.shape, file: r.file, sources: t.sources))
                    continue
                }
                var value = try t.entry.load()
                if value.dtype != want.dtype {
                    // No silent loss of an imaginary part, no element access into packed sub-byte data.
                    guard DTypeConversion.canConvert(from: value.dtype, to: want.dtype), !(value.dtype.isComplex && !want.dtype.isComplex) else {
                        throw MappingError("'\(t.key)' is \(value.dtype.rawValue) in \(r.file); the model needs \(want.dtype.rawValue)",
                                           kind: .cannotAssign, report: report)
                    }
                    value = value.converted(to: want.dtype)
                }
                if let earlier = provided[t.key] {
                    if earlier.tensor.bytes == value.bytes {
                        report.notes.append("'\(t.key)' is provided with identical values by \(earlier.file) and \(r.file)")
                        continue
                    }
                    throw MappingError("'\(t.key)' is provided with different values by \(earlier.file) (\(earlier.sources.joined(separator: ", "))) and \(r.file) (\(t.sources.joined(separator: ", ")))",
                                       kind: .conflictingSources, report: report)
                }
                provided[t.key] = (value, r.file, t.sources)
                report.applied.append(.init(key: t.key, sources: t.sources, file: r.file, rule: t.rule))
            }
        }

        let mismatchedKeys = Set(report.mismatched.map(\.key))
        let notProvided = expected.map(\.key).filter { provided[$0] == nil && !mismatchedKeys.contains($0) }
        let unusedNames = unusedKeys.map(\.key)
        let optional = results.flatMap(\.optional)
        for key in notProvided {
            if policy == .strict && !optional.contains(where: { $0.match(key) != nil }) {
                report.missing.append(.init(key: key, suggestion: didYouMean(key, among: unusedNames)))
            } else {
                report.kept.append(key)
            }
        }
        // Under partial, a shape mismatch keeps the model's value (listed under both).
        if policy == .partial { report.kept += expected.map(\.key).filter { mismatchedKeys.contains($0) && provided[$0] == nil } }
        report.unused = unusedKeys.map { .init(key: $0.key, file: $0.file, suggestion: didYouMean($0.key, among: notProvided)) }

        if !report.succeeded {
            throw MappingError("load failed under the \(policy.rawValue) policy: " + report.problems.joined(separator: "; "), kind: .policyViolation, report: report)
        }
        let values = expected.compactMap { p in provided[p.key].map { (key: p.key, tensor: $0.tensor) } }
        return LoadResult(values: values, report: report)
    }

    /// The strict-policy report for one mapped file, from names and shapes only (no tensor data is read).
    public static func check(_ result: MappingResult, expected: [ExpectedParameter]) -> LoadReport {
        var report = LoadReport(policy: .strict)
        report.files.append(.init(file: result.file, format: result.format.rawValue, table: result.table, root: result.root))
        report.ignored = result.ignored.map { .init(key: $0.key, file: result.file, rule: $0.rule) }
        let shapes = Dictionary(expected.map { ($0.key, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var provided = Set<String>()
        var unused = result.unused
        for t in result.targets {
            guard let shape = shapes[t.key] else { unused.append(t.key); continue }
            if shape != t.entry.shape {
                report.mismatched.append(.init(key: t.key, expected: shape, found: t.entry.shape, file: result.file, sources: t.sources))
            } else {
                provided.insert(t.key)
                report.applied.append(.init(key: t.key, sources: t.sources, file: result.file, rule: t.rule))
            }
        }
        let mismatched = Set(report.mismatched.map(\.key))
        let notProvided = expected.map(\.key).filter { !provided.contains($0) && !mismatched.contains($0) }
        for key in notProvided {
            if result.optional.contains(where: { $0.match(key) != nil }) {
                report.kept.append(key)
            } else {
                report.missing.append(.init(key: key, suggestion: didYouMean(key, among: unused)))
            }
        }
        report.unused = unused.map { .init(key: $0, file: result.file, suggestion: didYouMean($0, among: notProvided)) }
        return report
    }
}
