import Foundation

/// How to compare two checkpoints (`CheckpointDiff`).
public struct DiffOptions: Sendable {
    /// Values are equal when |a − b| ≤ atol + rtol·|b| (numpy's `allclose` rule, `b` the second file). The defaults
    /// (0, 0) ask for equal values.
    public var atol: Double
    public var rtol: Double
    /// Only the subtree under this dotted path of the first file (`state_dict`); nil compares the whole file.
    public var keyA: String?
    /// The same for the second file.
    public var keyB: String?
    /// When true, a metadata difference makes the files different; otherwise metadata differences are only listed
    /// (a conversion adds provenance entries, so converted files always differ there).
    public var metadataCounts: Bool
    /// Refuse a pickle naming globals outside the allowlist (by default they become inert placeholders and the
    /// report's `notices` say so).
    public var strictGlobals: Bool
    /// CRC and output-size checks of the readers.
    public var read: ReadOptions

    public init(atol: Double = 0, rtol: Double = 0, keyA: String? = nil, keyB: String? = nil, metadataCounts: Bool = false,
                strictGlobals: Bool = false, read: ReadOptions = ReadOptions()) {
        self.atol = atol; self.rtol = rtol; self.keyA = keyA; self.keyB = keyB; self.metadataCounts = metadataCounts
        self.strictGlobals = strictGlobals; self.read = read
    }
}

/// One element's value, as a diff reports it.
public enum ElementValue: Sendable, Equatable, CustomStringConvertible {
    case real(Double)
    /// Any integer or bool element, exactly.
    case integer(Int128)
    case complex(Double, Double)
    /// A byte of a packed sub-byte float tensor (compared byte by byte).
    case byte(UInt8)

    public var description: String {
        switch self {
        case .real(let d): return Self.format(d)
        case .integer(let i): return String(i)
        case let .complex(re, im): return "(\(Self.format(re))\(im.sign == .minus ? "-" : "+")\(Self.format(abs(im)))j)"
        case .byte(let b): return String(format: "0x%02x", b)
        }
    }

    /// Shortest round-tripping decimal; `nan`, `inf`, `-inf` as numpy prints them.
    static func format(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        return "\(d)"
    }
}

/// How the values of one tensor pair compare.
public struct ValueDiff: Sendable {
    /// The type both sides were widened to: real floats (float8 and float16/bfloat16/float32 widen exactly),
    /// integers and bools exactly, complex as complex128, packed sub-byte floats byte by byte.
    public enum Domain: String, Sendable { case float64, integer, complex128, bytes }

    public let domain: Domain
    /// Elements compared (bytes for `.bytes`).
    public let elements: Int
    /// Elements outside the tolerance (differing bytes for `.bytes`).
    public let beyondTolerance: Int
    /// The largest |a − b| (complex: the modulus of the difference; a NaN against a number or infinities that
    /// differ count as +∞); nil for `.bytes`, where no difference of values is defined.
    public let maxAbs: Double?
    /// Where the largest |a − b| is (first such element), as a multi-index; for `.bytes` the first differing byte's
    /// offset. Nil when no element differs.
    public let index: [Int]?
    /// The two values there.
    public let a: ElementValue?
    public let b: ElementValue?

    public var withinTolerance: Bool { beyondTolerance == 0 }
}

/// One tensor that is not the same in both files.
public struct TensorDiff: Sendable {
    public enum Status: String, Sendable {
        case onlyInA = "only_in_a", onlyInB = "only_in_b", different
        /// In both files, but a reader cannot represent it on one side (a quantized tensor, …), or its dtype changed
        /// to or from a packed type: equality cannot be established.
        case notCompared = "not_compared"
    }
    public enum Change: String, Sendable { case dtype, shape, values }

    public let name: String
    public let status: Status
    /// For `.different`: what changed.
    public let changes: [Change]
    public let dtypeA: DType?
    public let dtypeB: DType?
    public let shapeA: [Int]?
    public let shapeB: [Int]?
    /// The value comparison, when both sides have the same shape and comparable dtypes.
    public let values: ValueDiff?
    /// For `.notCompared` (and unsupported tensors present on one side only): why.
    public let reason: String?
}

/// A metadata entry that differs (nil: absent on that side). Values are compared as text.
public struct MetadataDiff: Sendable, Equatable {
    public let name: String
    public let a: String?
    public let b: String?
}

/// The result of comparing two checkpoints.
public struct DiffReport: Sendable {
    public let fileA: String
    public let fileB: String
    public let formatA: CheckpointFormat
    public let formatB: CheckpointFormat
    public let options: DiffOptions
    /// Tensors present in both files (including those not compared).
    public let common: Int
    /// Common tensors with equal dtype, shape and values within tolerance.
    public let equal: Int
    /// Every tensor that is not equal, in the first file's order, then the second file's own tensors.
    public let differences: [TensorDiff]
    /// The largest |a − b| over every tensor pair whose values were compared (0 when none were).
    public let maxAbs: Double
    /// Where that is: the tensor's name (nil when every compared value is equal).
    public let maxAbsTensor: String?
    public let metadata: [MetadataDiff]
    /// Neutralised pickle globals in either file.
    public let notices: [PreparedConversion.Notice]

    /// True when the files hold the same tensors (names, dtypes, shapes, values within tolerance) and, with
    /// `metadataCounts`, the same metadata.
    public var identical: Bool { differences.isEmpty && (!options.metadataCounts || metadata.isEmpty) }

    public func count(_ status: TensorDiff.Status) -> Int { differences.reduce(0) { $0 + ($1.status == status ? 1 : 0) } }
}

/// `weights diff`: compares two checkpoints of any formats tensor by tensor, loading one pair at a time (memory
/// is about two tensors).
public enum CheckpointDiff {
    /// Opens both files (`options.keyA` / `keyB` select subtrees) and compares them.
    public static func compare(_ a: String, _ b: String, options: DiffOptions = DiffOptions()) throws -> DiffReport {
        let sa = try Checkpoint.open(a, key: options.keyA, options: options.read)
        let sb = try Checkpoint.open(b, key: options.keyB, options: options.read)
        return try compare(sa, sb, options: options)
    }

    /// Compares two state dicts (tensor data is loaded lazily, one pair at a time).
    public static func compare(_ a: StateDict, _ b: StateDict, options: DiffOptions = DiffOptions()) throws -> DiffReport {
        var notices: [PreparedConversion.Notice] = []
        for sd in [a, b] {
            if let text = try sd.checkNeutralisedGlobals(strict: options.strictGlobals) {
                notices.append(.init(kind: sd.neutralisedGlobalsAreTorchOnly ? .note : .warning, text: text))
            }
        }
        let sideA = try Side(a), sideB = try Side(b)
        var differences: [TensorDiff] = []
        var common = 0, equal = 0
        var maxAbs = 0.0
        var maxAbsTensor: String?
        for name in sideA.order {
            guard let ia = sideA.items[name] else { continue }
            guard let ib = sideB.items[name] else {
                differences.append(onlyOn(.onlyInA, name, ia))
                continue
            }
            common += 1
            let (d, values) = try compare(name, ia, ib, fileA: a.file, fileB: b.file, options: options)
            if let m = values?.maxAbs, m > maxAbs { maxAbs = m; maxAbsTensor = name }
            if let d { differences.append(d) } else { equal += 1 }
        }
        for name in sideB.order where sideA.items[name] == nil {
            if let ib = sideB.items[name] { differences.append(onlyOn(.onlyInB, name, ib)) }
        }
        return DiffReport(fileA: a.file, fileB: b.file, formatA: a.format, formatB: b.format, options: options,
                          common: common, equal: equal, differences: differences, maxAbs: maxAbs, maxAbsTensor: maxAbsTensor,
                          metadata: metadataDifferences(a.metadata, b.metadata), notices: notices)
    }

    /// A tensor of one side: readable, or listed as unsupported by its reader.
    enum Item {
        case tensor(TensorEntry)
        case unsupported(UnsupportedTensor)
    }

    struct Side {
        var order: [String] = []
        var items: [String: Item] = [:]
        /// Throws on a name held twice (which tensor would be compared is then undefined).
        init(_ sd: StateDict) throws {
            let all = sd.tensors.map { ($0.name, Item.tensor($0)) } + sd.unsupported.map { ($0.name, Item.unsupported($0)) }
            for (name, item) in all {
                guard items[name] == nil else { throw CheckpointError("duplicate tensor name", file: sd.file, key: name) }
                order.append(name)
                items[name] = item
            }
        }
    }

    static func onlyOn(_ status: TensorDiff.Status, _ name: String, _ item: Item) -> TensorDiff {
        switch item {
        case .tensor(let t):
            let a = status == .onlyInA
            return TensorDiff(name: name, status: status, changes: [], dtypeA: a ? t.dtype : nil, dtypeB: a ? nil : t.dtype,
                              shapeA: a ? t.shape : nil, shapeB: a ? nil : t.shape, values: nil, reason: nil)
        case .unsupported(let u):
            return TensorDiff(name: name, status: status, changes: [], dtypeA: nil, dtypeB: nil, shapeA: nil, shapeB: nil,
                              values: nil, reason: u.what)
        }
    }

    /// The difference of a tensor present in both files (nil when they are equal) and its value comparison.
    static func compare(_ name: String, _ ia: Item, _ ib: Item, fileA: String, fileB: String,
                        options: DiffOptions) throws -> (TensorDiff?, ValueDiff?) {
        guard case .tensor(let ta) = ia, case .tensor(let tb) = ib else {
            var reasons: [String] = []
            if case .unsupported(let u) = ia { reasons.append("first file: \(u.what)") }
            if case .unsupported(let u) = ib { reasons.append("second file: \(u.what)") }
            var da: DType?, db: DType?, sa: [Int]?, sb: [Int]?
            if case .tensor(let t) = ia { da = t.dtype; sa = t.shape }
            if case .tensor(let t) = ib { db = t.dtype; sb = t.shape }
            return (TensorDiff(name: name, status: .notCompared, changes: [], dtypeA: da, dtypeB: db, shapeA: sa, shapeB: sb,
                               values: nil, reason: "not readable: " + reasons.joined(separator: "; ")), nil)
        }
        var changes: [TensorDiff.Change] = []
        if ta.dtype != tb.dtype { changes.append(.dtype) }
        if ta.shape != tb.shape { changes.append(.shape) }
        func different(_ values: ValueDiff?) -> TensorDiff {
            TensorDiff(name: name, status: .different, changes: changes, dtypeA: ta.dtype, dtypeB: tb.dtype,
                       shapeA: ta.shape, shapeB: tb.shape, values: values, reason: nil)
        }
        // A changed shape: values are not compared (no element corresponds to another).
        if ta.shape != tb.shape { return (different(nil), nil) }
        // Packed floats convert to nothing: with the dtype changed there is no common type to compare in.
        if ta.dtype != tb.dtype && (ta.dtype.isPacked || tb.dtype.isPacked) { return (different(nil), nil) }
        let x = try load(ta, file: fileA), y = try load(tb, file: fileB)
        let values = ElementComparison.compare(x, y, atol: options.atol, rtol: options.rtol)
        if !values.withinTolerance { changes.append(.values) }
        return (changes.isEmpty ? nil : different(values), values)
    }

    /// Loads an entry and checks it is what the reader promised.
    static func load(_ entry: TensorEntry, file: String) throws -> Tensor {
        let t = try CheckpointError.withContext(file: file) { try entry.load() }
        guard t.dtype == entry.dtype, t.shape == entry.shape else {
            throw CheckpointError("reader promised \(entry.dtype.rawValue) \(entry.shape) but loaded \(t.dtype.rawValue) \(t.shape)",
                                  file: file, key: entry.name)
        }
        return t
    }

    /// Metadata entries that differ (compared as text, so `5` read from a pickle equals `"5"` in safetensors
    /// metadata), in the first file's order, then the second's.
    static func metadataDifferences(_ a: [MetadataEntry], _ b: [MetadataEntry]) -> [MetadataDiff] {
        func table(_ entries: [MetadataEntry]) -> (order: [String], values: [String: String]) {
            var order: [String] = [], values: [String: String] = [:]
            for e in entries where values[e.name] == nil { order.append(e.name); values[e.name] = e.value.description }
            return (order, values)
        }
        let ta = table(a), tb = table(b)
        var out: [MetadataDiff] = []
        for name in ta.order where ta.values[name] != tb.values[name] {
            out.append(MetadataDiff(name: name, a: ta.values[name], b: tb.values[name]))
        }
        for name in tb.order where ta.values[name] == nil {
            out.append(MetadataDiff(name: name, a: nil, b: tb.values[name]))
        }
        return out
    }
}
