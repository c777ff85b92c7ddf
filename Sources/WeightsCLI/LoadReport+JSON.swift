import Weights

extension LoadReport {
    var json: JSON {
        .object([
            ("policy", .string(policy.rawValue)),
            ("succeeded", .bool(succeeded)),
            ("files", .array(files.map { .object([("file", .string($0.file)), ("format", .string($0.format)), ("table", .string($0.table)), ("root", .string($0.root))]) })),
            ("applied", .array(applied.map { .string($0.key) })),
            ("kept", .array(kept.map { .string($0) })),
            ("missing", .array(missing.map { .string($0.key) })),
            ("unused", .array(unused.map { .string($0.key) })),
            ("mismatched", .array(mismatched.map { m in .object([("key", .string(m.key)), ("expected", .array(m.expected.map { .int(Int64($0)) })), ("found", .array(m.found.map { .int(Int64($0)) })), ("file", .string(m.file))]) })),
            ("ignored", .array(ignored.map { .object([("key", .string($0.key)), ("rule", .string($0.rule))]) })),
            ("notes", .array(notes.map { .string($0) })),
            // Did-you-mean pairs for near misses between missing model keys and unused file keys.
            ("suggestions", .object(missing.compactMap { m in m.suggestion.map { (m.key, JSON.string($0)) } }
                                    + unused.compactMap { u in u.suggestion.map { (u.key, JSON.string($0)) } })),
        ])
    }
}

extension Comparison {
    var json: JSON {
        .object([
            ("name", .string(name)),
            ("shape", .array(shape.map { .int(Int64($0)) })),
            ("passed", .bool(passed)),
            ("max_abs_error", .double(maxAbsError)),
            ("max_abs_reference", .double(maxAbsReference)),
            ("max_rel_error", .double(maxRelError)),
            ("cosine", .double(cosine)),
            ("top1_agreement", top1Agreement.map { .double($0) } ?? .null),
            ("top5_agreement", top5Agreement.map { .double($0) } ?? .null),
            ("failing_elements", .int(Int64(failingElements))),
            ("worst_index", .array(worstIndex.map { .int(Int64($0)) })),
            ("worst_actual", .double(worstActual)),
            ("worst_reference", .double(worstReference)),
            ("atol", .double(atol)),
            ("rtol", .double(rtol)),
        ])
    }
}
