import TensorCore

/// A model family as it registers itself: its options (typed, with defaults and help), named configurations
/// (option values), the mapping family of its checkpoints, and how to build it. Declared in the family's own file
/// (`ResNet+Registration.swift`); `ModelRegistry.families` lists it once.
public struct ModelFamily: Sendable {
    public let name: String
    public let summary: String
    public let options: [ModelOption]
    public let configurations: [Configuration]
    /// Builds the model called `name` from resolved options, drawing tensors from `rng` (seeded or meta).
    public let build: @Sendable (_ name: String, _ options: ModelOptions, _ rng: inout ParameterInit) throws -> any Model

    /// A named configuration: option values over the family's defaults.
    public struct Configuration: Sendable {
        public let name: String
        public let summary: String
        public let values: [String: OptionValue]
        public init(_ name: String, _ summary: String, _ values: [String: OptionValue] = [:]) {
            self.name = name; self.summary = summary; self.values = values
        }
    }

    public init(name: String, summary: String, options: [ModelOption], configurations: [Configuration],
                build: @escaping @Sendable (_ name: String, _ options: ModelOptions, _ rng: inout ParameterInit) throws -> any Model) {
        self.name = name; self.summary = summary; self.options = options; self.configurations = configurations; self.build = build
    }
}

/// What a model looks like without allocating it: built on the meta "device" (shapes only).
public struct ModelDescription: Sendable {
    public let name: String
    public let mappingFamily: String
    public let options: ModelOptions
    public let parameterSpecs: [ParameterSpec]
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    public let activationPaths: [String]

    /// Trainable scalars (buffers excluded), as `sum(p.numel() for p in model.parameters())`.
    public var parameterCount: Int {
        parameterSpecs.filter { $0.kind == .parameter }.reduce(0) { $0 + $1.elementCount }
    }
}

/// Models by name: every configuration of every registered family.
public enum ModelRegistry {
    /// The registered families. Adding a family: its own files, plus one line here.
    public static let families: [ModelFamily] = [
        ResNet.family,
        SENet.family,
        VisionTransformer.family,
        STN.family,
        MobileViT.family,
        AnnotatedTransformer.family,
        D2LViT.family,
        SepViT.family,
    ]

    /// One named configuration of a family.
    public struct Entry: Sendable {
        public let family: ModelFamily
        public let configuration: ModelFamily.Configuration

        public var name: String { configuration.name }
        public var summary: String { configuration.summary }

        /// The family's options with this configuration's values as defaults.
        public var options: [ModelOption] {
            family.options.map { o in
                var o = o
                if let v = configuration.values[o.key] { o.defaultValue = v }
                return o
            }
        }

        /// Resolved options: this configuration's defaults, then `assignments` (`KEY=VALUE`), then `values`.
        public func resolve(assignments: [String] = [], values: [String: OptionValue] = [:]) throws -> ModelOptions {
            var o = try ModelOptions(model: name, declared: options)
            try o.apply(assignments: assignments)
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { try o.set(k, v) }
            return o
        }

        /// Builds the model with seeded weights.
        public func make(options: ModelOptions? = nil, seed: UInt64 = 0) throws -> any Model {
            var rng = ParameterInit.seeded(seed)
            return try family.build(name, try options ?? resolve(), &rng)
        }

        /// Builds with `--config`-style assignments.
        public func make(config assignments: [String], seed: UInt64 = 0) throws -> any Model {
            try make(options: resolve(assignments: assignments), seed: seed)
        }

        /// Keys, shapes, inputs, outputs and activation paths, from a meta build (no weights allocated).
        public func describe(options: ModelOptions? = nil) throws -> ModelDescription {
            var rng = ParameterInit.meta
            let opts = try options ?? resolve()
            let m = try family.build(name, opts, &rng)
            return ModelDescription(name: m.name, mappingFamily: m.mappingFamily, options: opts, parameterSpecs: m.parameterSpecs,
                                    inputs: m.inputSpecs, outputs: m.outputSpecs, activationPaths: m.activationPaths)
        }

        /// Registered tensors in `state_dict()` order at the default options (meta build).
        public var parameterSpecs: [ParameterSpec] { get throws { try describe().parameterSpecs } }

        /// Trainable scalars at the default options.
        public var parameterCount: Int { get throws { try describe().parameterCount } }
    }

    public static let entries: [Entry] = families.flatMap { f in f.configurations.map { Entry(family: f, configuration: $0) } }

    public static var names: [String] { entries.map(\.name) }

    public static func entry(_ name: String) throws -> Entry {
        guard let e = entries.first(where: { $0.name == name }) else {
            throw ModelError.unknownModel(name: name, available: names)
        }
        return e
    }

    /// Builds the model registered as `name` with seeded weights and `options` (typed values) over its defaults.
    public static func make(name: String, options: [String: OptionValue] = [:], seed: UInt64 = 0) throws -> any Model {
        let e = try entry(name)
        return try e.make(options: e.resolve(values: options), seed: seed)
    }

    /// Builds `name` with `KEY=VALUE` assignments (the CLI's `--config`).
    public static func make(name: String, config assignments: [String], seed: UInt64 = 0) throws -> any Model {
        try entry(name).make(config: assignments, seed: seed)
    }
}
