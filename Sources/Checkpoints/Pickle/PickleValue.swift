import TensorCore

/// A value built by the safe pickle machine.
///
/// Containers are reference types because pickle's memo shares them and APPEND/SETITEM/BUILD mutate them in
/// place after they were stored. Every container is created through a `PickleArena`, which can take the whole
/// graph apart without recursion (a 200 000-deep list would otherwise overflow the stack while being freed).
/// Nothing here refers to code: a `global` is only a (module, name) pair, an `object` only records how the pickle
/// asked for it to be built.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer that does not fit in Int64, in decimal.
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list(PickleList)
    case tuple(PickleTuple)
    case dict(PickleDict)
    /// A set or frozenset, in pickle order.
    case set(PickleList)
    /// A symbolic reference to `module.name`; never imported.
    case global(PickleGlobal)
    /// An inert stand-in for a call the machine does not interpret (an unknown class or function).
    case object(PickleObject)
    /// A torch dtype object (`torch.float32` pickled as GLOBAL `torch float32`), by its torch name.
    case dtype(String)
    /// A torch storage returned by `persistent_load`.
    case storage(TorchStorageRef)
    /// A dense tensor view of a storage, from `_rebuild_tensor_v2` and friends.
    case tensor(TorchTensorRef)
    /// Something malformed (rebuild arguments of the wrong kinds). Flattening it is an error that names its key.
    case invalid(String)
    /// A tensor of a kind this reader cannot represent (quantized, sparse, nested, meta, …), described. Flattening
    /// lists it in `StateDict.unsupported` under its name; the file's other tensors are unaffected.
    case unsupportedTensor(String)
    /// A torch quantized tensor (`_rebuild_qtensor`): its integer data and its quantizer parameters.
    case quantizedTensor(TorchQuantizedRef)

    /// A short name for the kind of value, used in error messages.
    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .set: return "set"
        case .global(let g): return "global \(g.qualifiedName)"
        case .object(let o): return "object \(o.typeName)"
        case .dtype(let d): return "dtype torch.\(d)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        case .invalid: return "unsupported value"
        case .unsupportedTensor: return "unsupported tensor"
        case .quantizedTensor: return "quantized tensor"
        }
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Elements of a tuple or list (torch.Size and plain tuples are both tuples here).
    var sequenceItems: [PickleValue]? {
        switch self {
        case .tuple(let t): return t.items
        case .list(let l): return l.items
        default: return nil
        }
    }
}

/// A reference to `module.name` as written by GLOBAL / STACK_GLOBAL.
struct PickleGlobal: Equatable, Hashable {
    let module: String
    let name: String

    var qualifiedName: String { "\(module).\(name)" }

    /// How the global is named to users: `posix.system` also says it is `os.system`.
    var displayName: String {
        if (module == "posix" || module == "nt") { return "\(qualifiedName) (os.\(name))" }
        return qualifiedName
    }
}

final class PickleList {
    var items: [PickleValue] = []
    init(_ items: [PickleValue] = []) { self.items = items }
}

final class PickleTuple {
    var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
}

/// An insertion-ordered dictionary. Keys that Python would hash equally (strings, ints, bools) replace the value
/// in place, as Python's dict does; other keys are kept in order without deduplication.
final class PickleDict {
    private(set) var keys: [PickleValue] = []
    private(set) var values: [PickleValue] = []
    private var index: [HashKey: Int] = [:]
    /// Attributes set by BUILD (e.g. the `_metadata` of a state_dict OrderedDict); not items.
    var attributes: PickleValue?

    enum HashKey: Hashable {
        case str(String)
        case int(Int64)
        case big(String)
        case bytes([UInt8])
    }

    static func hashKey(_ v: PickleValue) -> HashKey? {
        switch v {
        case .string(let s): return .str(s)
        case .int(let i): return .int(i)
        case .bool(let b): return .int(b ? 1 : 0)
        case .bigInt(let s): return .big(s)
        case .bytes(let b): return .bytes(b)
        case .float(let d):
            if d.rounded() == d, let i = Int64(exactly: d) { return .int(i) }
            return nil
        default: return nil
        }
    }

    var count: Int { keys.count }

    /// Charged for every key hashed (a 32 MiB key set a million times must not run for hours).
    let budget: PickleBudget?

    init(budget: PickleBudget? = nil) { self.budget = budget }

    /// Bytes hashed (and compared) to look `key` up.
    static func hashCost(_ key: PickleValue) -> Int {
        switch key {
        case .string(let s): return s.utf8.count + 8
        case .bytes(let b): return b.count + 8
        case .bigInt(let s): return s.utf8.count + 8
        default: return 8
        }
    }

    func set(_ key: PickleValue, _ value: PickleValue) throws {
        try budget?.chargeHash(Self.hashCost(key))
        if let h = Self.hashKey(key) {
            if let i = index[h] {
                values[i] = value
                return
            }
            index[h] = keys.count
        }
        keys.append(key)
        values.append(value)
    }

    func get(_ key: String) -> PickleValue? {
        index[.str(key)].map { values[$0] }
    }

    func removeAll() {
        keys = []
        values = []
        index = [:]
        attributes = nil
    }
}

/// How an object the machine does not interpret was asked for: by calling a global (REDUCE), by `cls.__new__`
/// (NEWOBJ / NEWOBJ_EX / INST / OBJ / copyreg._reconstructor), and what BUILD / APPEND / SETITEM did to it since.
final class PickleObject {
    /// What was called: usually a global, occasionally another value.
    var callable: PickleValue
    var args: [PickleValue]
    var kwargs: PickleValue?
    /// The argument of BUILD (an object's `__dict__`, or a `(dict, slots)` pair).
    var state: PickleValue?
    /// Items added by APPEND(S) / SETITEM(S) / ADDITEMS, for list- or dict-like classes.
    var listItems: [PickleValue] = []
    var dictItems: PickleDict?

    init(callable: PickleValue, args: [PickleValue], kwargs: PickleValue? = nil) {
        self.callable = callable
        self.args = args
        self.kwargs = kwargs
    }

    var global: PickleGlobal? {
        if case .global(let g) = callable { return g }
        return nil
    }

    var typeName: String { global?.qualifiedName ?? "<\(callable.kindName)>" }

    /// The object's attribute dict, when its state is a dict or a `(dict, slots)` pair.
    var stateDict: PickleDict? {
        switch state {
        case .dict(let d)?: return d
        case .tuple(let t)?:
            if t.items.count == 2, case .dict(let d) = t.items[0] { return d }
            if t.items.count == 2, case .dict(let d) = t.items[1] { return d }
            return nil
        default: return nil
        }
    }

    /// A torch `nn.Module`, recognised by its state, not its class (which is never imported).
    var isModuleLike: Bool {
        guard let s = stateDict else { return false }
        return s.get("_parameters") != nil && s.get("_modules") != nil
    }
}

/// A storage named by a persistent id. `dtype` is nil when the storage type is not supported; `typeName` keeps
/// what the file said so the error can name it.
final class TorchStorageRef {
    let key: String
    let typeName: String
    let dtype: DType?
    /// Bytes per element of the storage type, when known (also for unsupported types, so legacy records can be walked).
    let elementSize: Int?
    /// Declared element count (of `dtype`).
    let numel: Int
    let location: String
    /// Legacy storage views: the view starts `viewOffset` elements into the root storage `key`, which declares
    /// `rootNumel` elements, and has `numel` elements. For ordinary storages `viewOffset == 0, rootNumel == numel`.
    let viewOffset: Int
    let rootNumel: Int

    init(key: String, typeName: String, dtype: DType?, elementSize: Int?, numel: Int, location: String, viewOffset: Int = 0, rootNumel: Int? = nil) {
        self.key = key
        self.typeName = typeName
        self.dtype = dtype
        self.elementSize = elementSize
        self.numel = numel
        self.location = location
        self.viewOffset = viewOffset
        self.rootNumel = rootNumel ?? numel
    }
}

/// A strided view of a storage, exactly as the pickle described it (validated later, when a key is known).
final class TorchTensorRef {
    let storage: TorchStorageRef
    let storageOffset: Int64
    let size: [Int64]
    let stride: [Int64]
    /// `_rebuild_tensor_v3` names the dtype separately from the storage; its torch name.
    let dtypeName: String?
    let isParameter: Bool
    /// Appended to the tensor's location (what `inspect` shows), e.g. how a quantized tensor was read.
    let note: String

    init(storage: TorchStorageRef, storageOffset: Int64, size: [Int64], stride: [Int64], dtypeName: String? = nil, isParameter: Bool = false,
         note: String = "") {
        self.storage = storage
        self.storageOffset = storageOffset
        self.size = size
        self.stride = stride
        self.dtypeName = dtypeName
        self.isParameter = isParameter
        self.note = note
    }

    func asParameter() -> TorchTensorRef {
        TorchTensorRef(storage: storage, storageOffset: storageOffset, size: size, stride: stride, dtypeName: dtypeName, isParameter: true, note: note)
    }
}

/// A torch quantized tensor: `data` views its storage as the plain integer dtype (qint8 → int8, quint8 → uint8,
/// qint32 → int32), and `companions` are the quantizer parameters, emitted beside it as `<name>.<suffix>`
/// (see `QuantizedNaming`).
final class TorchQuantizedRef {
    enum Companion {
        /// A value built here (per-tensor scale and zero point, the channel axis): a 0-d tensor.
        case scalar(DType, [UInt8])
        /// A tensor from the pickle (per-channel scales and zero points).
        case tensor(TorchTensorRef)
    }
    let data: TorchTensorRef
    let companions: [(suffix: String, value: Companion)]

    init(data: TorchTensorRef, companions: [(suffix: String, value: Companion)]) {
        self.data = data
        self.companions = companions
    }
}

/// Owns every container the machine creates so that the graph can be taken apart iteratively.
/// Containers reference each other freely (memo sharing, even cycles); `dismantle()` empties each one while the
/// arena still holds them all, so no release ever recurses and cycles do not leak.
final class PickleArena {
    let budget: PickleBudget
    init(budget: PickleBudget = PickleBudget(limits: .standard)) { self.budget = budget }
    private var lists: [PickleList] = []
    private var tuples: [PickleTuple] = []
    private var dicts: [PickleDict] = []
    private var objects: [PickleObject] = []

    func list(_ items: [PickleValue] = []) -> PickleList {
        budget.containers += 1
        let l = PickleList(items); lists.append(l); return l
    }
    func tuple(_ items: [PickleValue]) -> PickleTuple {
        budget.containers += 1
        let t = PickleTuple(items); tuples.append(t); return t
    }
    func dict() -> PickleDict {
        budget.containers += 1
        let d = PickleDict(budget: budget); dicts.append(d); return d
    }
    /// A list, set or tuple holding a copy of `items` (`list(x)`, `set(x)`, `tuple(x)`): the copy is charged.
    func copiedList(_ items: [PickleValue]) throws -> PickleList {
        try budget.chargeValues(items.count)
        return list(items)
    }
    func copiedTuple(_ items: [PickleValue]) throws -> PickleTuple {
        try budget.chargeValues(items.count)
        return tuple(items)
    }
    func object(callable: PickleValue, args: [PickleValue], kwargs: PickleValue? = nil) -> PickleObject {
        budget.containers += 1
        let o = PickleObject(callable: callable, args: args, kwargs: kwargs); objects.append(o); return o
    }

    var containerCount: Int { lists.count + tuples.count + dicts.count + objects.count }

    func dismantle() {
        for l in lists { l.items = [] }
        for t in tuples { t.items = [] }
        for d in dicts { d.removeAll() }
        for o in objects {
            o.callable = .none; o.args = []; o.kwargs = nil; o.state = nil; o.listItems = []; o.dictItems = nil
        }
        lists = []; tuples = []; dicts = []; objects = []
    }
}

/// The work one pickle may make the machine do, charged as it happens (not only what it keeps): values created,
/// items stored or copied into containers (`dict(d)`, `list(l)`, BUILD merges), bytes hashed as dict keys, and
/// bytes of strings or bytes built by calls. Each charge is checked before the work it pays for.
final class PickleBudget {
    let limits: PickleLimits
    private(set) var values = 0
    private(set) var hashedBytes = 0
    private(set) var builtBytes = 0
    /// Containers are counted by the arena.
    var containers = 0

    init(limits: PickleLimits) { self.limits = limits }

    func chargeValues(_ n: Int) throws {
        values += n
        guard values <= limits.maxValues - min(containers, limits.maxValues) else {
            throw CheckpointError("pickle builds or copies more than \(limits.maxValues) containers and container items "
                                  + "(items copied by dict(), list() or BUILD count each time)")
        }
    }

    func chargeHash(_ bytes: Int) throws {
        hashedBytes += bytes
        guard hashedBytes <= limits.maxHashedBytes else {
            throw CheckpointError("pickle hashes more than \(limits.maxHashedBytes) bytes of dict keys (a large key set over and over)")
        }
    }

    func chargeBuilt(_ bytes: Int) throws {
        builtBytes += bytes
        guard builtBytes <= limits.maxBuiltBytes else {
            throw CheckpointError("pickle calls build more than \(limits.maxBuiltBytes) bytes of strings and bytes")
        }
    }
}
