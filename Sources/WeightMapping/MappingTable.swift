import TensorCore

/// A declarative mapping from one checkpoint dialect's keys onto one model family's parameter keys.
/// Parsed from a YAML file under `Mappings/`; every rule remembers its `file:line`.
public struct MappingTable: Sendable {
    /// How several source tensors become one target, or one source several targets.
    public enum Combine: Sendable, Equatable {
        case single
        case concat(dim: Int)
        /// Equal sections, or explicit sizes along `dim`.
        case split(dim: Int, sections: Int?, sizes: [Int]?)
    }

    public struct Rule: Sendable {
        public var targets: [KeyPattern]
        public var sources: [KeyPattern]
        public var combine: Combine
        /// Applied to each source before combining.
        public var each: [Transform]
        /// Applied after combining (to the one target of a concat, or the source before a split).
        public var transforms: [Transform]
        /// Applied to each target after a split.
        public var after: [Transform]
        /// `Mappings/x.yaml:12`
        public var location: String
    }

    public struct Ignore: Sendable {
        public var pattern: KeyPattern
        public var location: String
    }

    public var name: String
    public var file: String
    public var family: String
    /// Model names this table serves (patterns, e.g. `resnet*_cbam`). Empty means every model of `family`.
    public var models: [KeyPattern]
    public var description: String
    /// Whether detection may pick this table without the user naming it.
    public var auto: Bool
    /// Candidate sub-trees of a checkpoint holding the weights (`state_dict`, `model`); "" is the root itself.
    public var roots: [String]
    /// Prefixes removed when every key carries them (`module.` from DataParallel).
    public var stripPrefixes: [String]
    public var detectRequire: [KeyPattern]
    public var detectForbid: [KeyPattern]
    /// Formats this dialect comes in (`hdf5`, `npz`, …); empty means any.
    public var detectFormats: [String] = []
    /// Model keys the dialect may lack (e.g. `*.num_batches_tracked` in pre-1.0 torchvision files); when absent
    /// they keep the model's own value and are listed as kept, even under `strict` — as PyTorch's BatchNorm does.
    public var optional: [KeyPattern] = []
    /// Source keys not claimed by a rule but equal to a model key map onto that key unchanged.
    public var identity: Bool
    public var ignores: [Ignore]
    public var rules: [Rule]

    public init(name: String, file: String = "<memory>", family: String, models: [KeyPattern] = [], description: String = "",
                auto: Bool = true, roots: [String] = [""], stripPrefixes: [String] = [], detectRequire: [KeyPattern] = [],
                detectForbid: [KeyPattern] = [], identity: Bool = false, ignores: [Ignore] = [], rules: [Rule] = []) {
        self.name = name
        self.file = file
        self.family = family
        self.models = models
        self.description = description
        self.auto = auto
        self.roots = roots
        self.stripPrefixes = stripPrefixes
        self.detectRequire = detectRequire
        self.detectForbid = detectForbid
        self.identity = identity
        self.ignores = ignores
        self.rules = rules
    }

    /// The identity table: checkpoint keys are model keys. Used when a file's keys already are the model's.
    public static func identity(family: String = "*") -> MappingTable {
        MappingTable(name: "identity", file: "<built-in>", family: family,
                     description: "checkpoint keys are the model's keys", auto: false, identity: true)
    }

    /// Whether this table serves `model` of `family`.
    public func serves(model: String?, family modelFamily: String?) -> Bool {
        if let modelFamily, family != "*", family != modelFamily { return false }
        guard let model, !models.isEmpty else { return true }
        return models.contains { $0.match(model) != nil }
    }

    /// Whether the keys look like this table's dialect (every `require` pattern matches some key, no `forbid` does).
    public func detects(_ keys: [String], format: String? = nil) -> Bool {
        guard !detectRequire.isEmpty else { return false }
        if let format, !detectFormats.isEmpty, !detectFormats.contains(format) { return false }
        for p in detectRequire where !keys.contains(where: { p.match($0) != nil }) { return false }
        for p in detectForbid where keys.contains(where: { p.match($0) != nil }) { return false }
        return true
    }
}
