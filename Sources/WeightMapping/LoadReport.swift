import TensorCore
import Checkpoints

/// What a model expects: one parameter or buffer, under its upstream key.
public struct ExpectedParameter: Sendable, Equatable {
    public var key: String
    public var shape: [Int]
    public var dtype: DType
    public init(key: String, shape: [Int], dtype: DType = .float32) {
        self.key = key
        self.shape = shape
        self.dtype = dtype
    }
}

/// How strictly a load must cover the model and use the files.
public enum LoadPolicy: String, Sendable, CaseIterable {
    /// Every model parameter provided, every source tensor used or explicitly ignored, shapes equal.
    case strict
    /// PyTorch's `sd = model.state_dict(); sd.update(pretrained)`: the model's own values are the base and
    /// the files override what they provide; keys the files do not provide are kept (and listed).
    case merge
    /// As merge, and also skips (and lists) unused source tensors and shape mismatches.
    case partial
}

/// Everything a load found, whatever the outcome. The CLI prints it; the library returns it.
public struct LoadReport: Sendable {
    public struct FileUsed: Sendable {
        public var file: String
        public var format: String
        public var table: String
        public var root: String
    }
    public struct Applied: Sendable {
        public var key: String
        public var sources: [String]
        public var file: String
        public var rule: String?
    }
    public struct Ignored: Sendable {
        public var key: String
        public var file: String
        public var rule: String
    }
    public struct Unused: Sendable {
        public var key: String
        public var file: String
        public var suggestion: String?
    }
    public struct Missing: Sendable {
        public var key: String
        public var suggestion: String?
    }
    public struct Mismatch: Sendable {
        public var key: String
        public var expected: [Int]
        public var found: [Int]
        public var file: String
        public var sources: [String]
    }

    public var policy: LoadPolicy
    public var files: [FileUsed] = []
    public var applied: [Applied] = []
    public var ignored: [Ignored] = []
    /// Model keys whose own values were kept (not provided, or skipped under `partial`).
    public var kept: [String] = []
    /// Model keys no file provided, under `strict`.
    public var missing: [Missing] = []
    public var unused: [Unused] = []
    public var mismatched: [Mismatch] = []
    /// Informational lines (e.g. a key provided identically by two files).
    public var notes: [String] = []

    public init(policy: LoadPolicy) { self.policy = policy }

    /// What makes this load fail under its policy (empty when it succeeds).
    public var problems: [String] {
        var p: [String] = []
        switch policy {
        case .strict:
            if !missing.isEmpty { p.append("\(missing.count) model key(s) not provided by the files") }
            if !unused.isEmpty { p.append("\(unused.count) source tensor(s) neither used nor ignored") }
            if !mismatched.isEmpty { p.append("\(mismatched.count) shape mismatch(es)") }
        case .merge:
            if !unused.isEmpty { p.append("\(unused.count) source tensor(s) match no model key") }
            if !mismatched.isEmpty { p.append("\(mismatched.count) shape mismatch(es)") }
        case .partial:
            break
        }
        return p
    }

    public var succeeded: Bool { problems.isEmpty }

    /// A readable multi-line summary.
    public func rendered(verbose: Bool = false) -> String {
        // Keys and file names come from files: escaped so that they cannot break lines or drive the terminal.
        func e(_ text: String) -> String { TerminalText.escape(text) }
        func es(_ texts: [String], _ separator: String) -> String { texts.map(e).joined(separator: separator) }
        var s = "load (\(policy.rawValue)): "
        s += "\(applied.count) applied, \(ignored.count) ignored, \(kept.count) kept from model, "
        s += "\(missing.count) missing, \(unused.count) unused, \(mismatched.count) mismatched\n"
        for f in files { s += "  file \(e(f.file)) [\(f.format)] via table \(e(f.table))\(f.root.isEmpty ? "" : " (root '\(e(f.root))')")\n" }
        func list<T>(_ title: String, _ items: [T], limit: Int, _ line: (T) -> String) {
            guard !items.isEmpty else { return }
            s += "  \(title):\n"
            for item in items.prefix(verbose ? items.count : limit) { s += "    \(line(item))\n" }
            if !verbose && items.count > limit { s += "    … and \(items.count - limit) more\n" }
        }
        list("missing", missing, limit: 20) { m in e(m.key) + (m.suggestion.map { "  (did you mean '\(e($0))'?)" } ?? "") }
        list("unused", unused, limit: 20) { u in "\(e(u.key))  [\(e(u.file))]" + (u.suggestion.map { "  (did you mean '\(e($0))'?)" } ?? "") }
        list("mismatched", mismatched, limit: 20) { m in "\(e(m.key)): model \(m.expected), file \(m.found)  [\(e(m.file)): \(es(m.sources, ", "))]" }
        list("kept from model", kept, limit: verbose ? .max : 10) { e($0) }
        if verbose {
            list("ignored", ignored, limit: .max) { "\(e($0.key))  [\(e($0.rule))]" }
            list("applied", applied, limit: .max) { a in a.sources == [a.key] ? e(a.key) : "\(e(a.key)) <- \(es(a.sources, " + "))" }
        }
        for n in notes { s += "  note: \(e(n))\n" }
        return s
    }
}

/// Nearest candidate by edit distance, if close enough to be a plausible typo or renaming.
func didYouMean(_ key: String, among candidates: [String]) -> String? {
    var best: (String, Int)?
    let limit = max(2, key.count / 4)
    for c in candidates {
        if abs(c.count - key.count) > limit { continue }
        let d = editDistance(key, c, limit: limit)
        if d <= limit, best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}

/// Levenshtein distance, giving up (returning limit+1) once it must exceed `limit`.
func editDistance(_ a: String, _ b: String, limit: Int) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        var rowMin = cur[0]
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            rowMin = min(rowMin, cur[j])
        }
        if rowMin > limit { return limit + 1 }
        swap(&prev, &cur)
    }
    return prev[y.count]
}
