import Checkpoints
import Models
import TensorCore
import WeightMapping

/// Options for loading checkpoint files onto a model.
public struct LoadOptions: Sendable {
    public var mapping: MappingChoice
    public var policy: LoadPolicy
    /// A dotted sub-tree of every file to read from (`state_dict`), or nil for the tables' own root choice.
    public var key: String?
    public var catalog: MappingCatalog?
    /// How each file is read: CRC checks and the cap on declared tensor bytes.
    public var read: ReadOptions

    public init(mapping: MappingChoice = .auto, policy: LoadPolicy = .strict, key: String? = nil, catalog: MappingCatalog? = nil,
                read: ReadOptions = ReadOptions()) {
        self.mapping = mapping
        self.policy = policy
        self.key = key
        self.catalog = catalog
        self.read = read
    }
}

extension Model {
    /// The parameters this model expects, for the loader.
    public var expectedParameters: [ExpectedParameter] {
        parameterSpecs.map { ExpectedParameter(key: $0.key, shape: $0.shape, dtype: $0.dtype) }
    }

    /// Maps each of `files` (in order) through its table and applies the result to this model's parameters
    /// under `options.policy`. Returns the complete load report; on a policy violation throws a `MappingError`
    /// that carries the report, and leaves the model unchanged.
    @discardableResult
    public mutating func load(_ files: [String], options: LoadOptions = LoadOptions()) throws -> LoadReport {
        let catalog = try options.catalog ?? MappingCatalog.standard()
        let expected = expectedParameters
        let keys = Set(expected.map(\.key))
        let family = mappingFamily
        var results: [MappingResult] = []
        for file in files {
            let sd = try Checkpoint.open(file, key: options.key, options: options.read)
            let table = try catalog.resolve(options.mapping, for: sd, model: name, family: family, expectedKeys: keys)
            results.append(try table.apply(to: sd, expectedKeys: keys))
        }
        let result = try WeightLoader.load(results, expected: expected, policy: options.policy)
        try assign(result.values)
        return result.report
    }

    /// Loads one file.
    @discardableResult
    public mutating func load(_ file: String, mapping: MappingChoice = .auto, policy: LoadPolicy = .strict) throws -> LoadReport {
        try load([file], options: LoadOptions(mapping: mapping, policy: policy))
    }

    /// Sets many parameters in one walk over the model (shapes and dtypes were checked by the loader).
    mutating func assign(_ values: [(key: String, tensor: Tensor)]) throws {
        var setter = BulkSetter(values: Dictionary(values.map { ($0.key, $0.tensor) }, uniquingKeysWith: { a, _ in a }))
        visitParameters(&setter)
        if let (key, problem) = setter.problem { throw MappingError("\(name): cannot set '\(key)': \(problem)", kind: .cannotAssign) }
    }
}

private struct BulkSetter: ParameterVisitor {
    var scope: [String] = []
    let values: [String: Tensor]
    var problem: (String, String)?

    mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {
        guard let v = values[key] else { return }
        guard v.shape == tensor.shape, v.dtype.isFloatingPoint else {
            problem = problem ?? (key, "expected float32 \(tensor.shape), got \(v.dtype.rawValue) \(v.shape)")
            return
        }
        tensor = FloatTensor(v)
    }

    mutating func visit(key: String, int64: inout Int64) {
        guard let v = values[key] else { return }
        guard v.shape.isEmpty, v.dtype.isInteger else {
            problem = problem ?? (key, "expected an int64 scalar, got \(v.dtype.rawValue) \(v.shape)")
            return
        }
        int64 = v.converted(to: .int64).bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
    }
}
