import Foundation
import TensorCore

/// The allowlist: the globals the pickle machine understands, and what calling them means. Nothing here imports
/// or runs anything; each known global is interpreted by a few lines of Swift that build a `PickleValue`.
/// Anything else becomes an inert `PickleObject`.
enum TorchGlobals {
    // MARK: names

    /// Python 2-era and renamed module paths, mapped to the names used below.
    static func canonical(_ g: PickleGlobal) -> PickleGlobal {
        switch g.module {
        case "__builtin__": return PickleGlobal(module: "builtins", name: g.name)
        case "copy_reg": return PickleGlobal(module: "copyreg", name: g.name)
        case "torch.tensor": return PickleGlobal(module: "torch._tensor", name: g.name)
        case "numpy._core.multiarray": return PickleGlobal(module: "numpy.core.multiarray", name: g.name)
        case "numpy._core.numeric": return PickleGlobal(module: "numpy.core.numeric", name: g.name)
        default: return g
        }
    }

    /// torch dtype attribute names (`torch.float32`, aliases such as `torch.half`) → supported DType, or nil for
    /// dtypes torch has but this reader does not support.
    static let torchDTypes: [String: DType?] = [
        "float64": .float64, "double": .float64, "float32": .float32, "float": .float32,
        "float16": .float16, "half": .float16, "bfloat16": .bfloat16,
        "int64": .int64, "long": .int64, "int32": .int32, "int": .int32, "int16": .int16, "short": .int16,
        "int8": .int8, "uint8": .uint8, "bool": .bool,
        "complex32": nil, "chalf": nil, "complex64": .complex64, "cfloat": .complex64, "complex128": .complex128, "cdouble": .complex128,
        "uint16": .uint16, "uint32": .uint32, "uint64": .uint64,
        "float8_e4m3fn": .float8_e4m3fn, "float8_e5m2": .float8_e5m2, "float8_e4m3fnuz": .float8_e4m3fnuz,
        "float8_e5m2fnuz": .float8_e5m2fnuz, "float8_e8m0fnu": .float8_e8m0fnu,
        "float4_e2m1fn_x2": nil,
        "qint8": nil, "quint8": nil, "qint32": nil, "quint4x2": nil, "quint2x4": nil,
        "bits1x8": nil, "bits2x4": nil, "bits4x2": nil, "bits8": nil, "bits16": nil,
        "int1": nil, "int2": nil, "int3": nil, "int4": nil, "int5": nil, "int6": nil, "int7": nil,
        "uint1": nil, "uint2": nil, "uint3": nil, "uint4": nil, "uint5": nil, "uint6": nil, "uint7": nil,
    ]

    /// Storage class names → (dtype or nil when unsupported, torch dtype name, element size). UntypedStorage holds bytes.
    static let storageTypes: [String: (dtype: DType?, torchName: String, elementSize: Int)] = [
        "FloatStorage": (.float32, "float32", 4), "DoubleStorage": (.float64, "float64", 8), "HalfStorage": (.float16, "float16", 2),
        "BFloat16Storage": (.bfloat16, "bfloat16", 2), "LongStorage": (.int64, "int64", 8), "IntStorage": (.int32, "int32", 4),
        "ShortStorage": (.int16, "int16", 2), "CharStorage": (.int8, "int8", 1), "ByteStorage": (.uint8, "uint8", 1),
        "BoolStorage": (.bool, "bool", 1), "UntypedStorage": (.uint8, "uint8", 1),
        "ComplexFloatStorage": (.complex64, "complex64", 8), "ComplexDoubleStorage": (.complex128, "complex128", 16),
        "QInt8Storage": (nil, "qint8", 1), "QUInt8Storage": (nil, "quint8", 1), "QInt32Storage": (nil, "qint32", 4),
        "QUInt4x2Storage": (nil, "quint4x2", 1), "QUInt2x4Storage": (nil, "quint2x4", 1),
    ]

    static let storageModules: Set<String> = ["torch", "torch.cuda", "torch.storage"]

    static func isStorageType(_ g: PickleGlobal) -> Bool {
        storageModules.contains(g.module) && g.name.hasSuffix("Storage")
    }

    /// Rebuild functions for tensors this reader cannot represent, with what they are.
    static let unsupportedRebuilds: [String: String] = [
        "_rebuild_qtensor": "a quantized tensor",
        "_rebuild_sparse_tensor": "a sparse tensor",
        "_rebuild_sparse_csr": "a sparse CSR tensor",
        "_rebuild_meta_tensor_no_storage": "a meta tensor (it has no data)",
        "_rebuild_wrapper_subclass": "a tensor subclass without storage (meta or wrapper tensor)",
        "_rebuild_nested_tensor": "a nested tensor",
        "_rebuild_device_tensor_from_numpy": "a device tensor stored as a numpy array",
        "_rebuild_device_tensor_from_cpu_tensor": "a device tensor stored through a CPU copy",
        "_rebuild_xla_tensor": "an XLA tensor",
        "_rebuild_mtia_tensor": "an MTIA tensor",
        "_rebuild_mps_tensor": "an MPS tensor",
    ]

    /// Qualified names that are interpreted (or harmless to reference) and so are not "foreign".
    static let allowlist: Set<String> = [
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2",
        "torch.Tensor", "torch._tensor.Tensor", "torch.nn.parameter.Parameter", "torch.nn.Parameter",
        "torch.Size", "torch.device", "torch.serialization._get_layout",
        "collections.OrderedDict", "collections.defaultdict",
        "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.slice", "builtins.list",
        "builtins.dict", "builtins.tuple", "builtins.object", "builtins.bytes",
        "_codecs.encode", "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
        "numpy.core.multiarray.scalar", "numpy.dtype", "builtins.complex",
        // numpy arrays, interpreted as data by NumpyPickle.
        "numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.core.numeric._frombuffer",
        "numpy.core._internal._reconstruct",
        // TorchScript archives wrap typed lists and tagged values; each returns its first argument.
        "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_floatlist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.restore_type_tag",
        // Inert torch enums that appear as arguments (quantization schemes, layouts, memory formats).
        "torch.per_tensor_affine", "torch.per_channel_affine", "torch.per_tensor_symmetric", "torch.per_channel_symmetric",
        "torch.per_channel_affine_float_qparams", "torch.strided", "torch.sparse_coo", "torch.sparse_csr",
        "torch.sparse_csc", "torch.sparse_bsr", "torch.sparse_bsc", "torch._mkldnn", "torch.jagged",
        "torch.contiguous_format", "torch.channels_last", "torch.channels_last_3d", "torch.preserve_format",
    ]

    static func isAllowlisted(_ g: PickleGlobal) -> Bool {
        let c = canonical(g)
        if allowlist.contains(c.qualifiedName) || isStorageType(c) { return true }
        if c.module == "torch", torchDTypes[c.name] != nil { return true }
        if c.module == "torch._utils", unsupportedRebuilds[c.name] != nil { return true }
        return false
    }

    /// The value GLOBAL / STACK_GLOBAL pushes, and whether the global is on the allowlist.
    static func resolve(_ g: PickleGlobal) -> (PickleValue, Bool) {
        let c = canonical(g)
        if c.module == "torch", torchDTypes[c.name] != nil { return (.dtype(c.name), true) }
        return (.global(g), isAllowlisted(g))
    }

    // MARK: calls

    /// REDUCE: `callable(*args)`, interpreted for allowlisted globals, recorded inertly otherwise.
    static func call(_ callable: PickleValue, args: [PickleValue], machine: PickleMachine, depth: Int = 0) throws -> PickleValue {
        guard case .global(let raw) = callable else {
            return .object(machine.arena.object(callable: callable, args: args))
        }
        let g = canonical(raw)
        if !isAllowlisted(raw) {
            machine.noteForeign(raw, called: true)
            return .object(machine.arena.object(callable: callable, args: args))
        }
        let arena = machine.arena
        switch (g.module, g.name) {
        case ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"):
            return rebuildTensor(args, function: g.qualifiedName, dtypeArg: nil, machine: machine)
        case ("torch._utils", "_rebuild_tensor_v3"):
            return rebuildTensor(args, function: g.qualifiedName, dtypeArg: 6, machine: machine)
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let first = args.first else { return .invalid("\(g.qualifiedName) called without arguments") }
            if case .tensor(let t) = first { return .tensor(t.asParameter()) }
            return first
        case ("torch._tensor", "_rebuild_from_type"), ("torch._tensor", "_rebuild_from_type_v2"):
            // (func, type, args, state): a tensor subclass or a tensor with Python attributes; the data is func(*args).
            guard args.count >= 3, let inner = args[2].sequenceItems else {
                return .invalid("malformed \(g.qualifiedName) arguments")
            }
            guard depth < 4 else { return .invalid("\(g.qualifiedName) nested too deeply") }
            return try call(args[0], args: inner, machine: machine, depth: depth + 1)
        case ("torch._utils", "_rebuild_qtensor"):
            return rebuildQuantized(args, function: g.qualifiedName, machine: machine)
        case ("torch._utils", let name) where unsupportedRebuilds[name] != nil:
            machine.unsupportedTensorsBuilt += 1
            return .unsupportedTensor("\(unsupportedRebuilds[name] ?? name) (rebuilt by \(g.qualifiedName))")
        case ("collections", "OrderedDict"), ("builtins", "dict"), ("collections", "defaultdict"):
            let d = arena.dict()
            // OrderedDict(pairs) / dict(pairs); defaultdict's first argument is its factory.
            // Copies are charged: dict(d) called a thousand times on a large d is a thousand copies.
            if g.name != "defaultdict", let pairs = args.first?.sequenceItems {
                try arena.budget.chargeValues(2 * pairs.count)
                for p in pairs {
                    if let kv = p.sequenceItems, kv.count == 2 { try d.set(kv[0], kv[1]) }
                }
            } else if g.name != "defaultdict", case .dict(let src)? = args.first {
                try arena.budget.chargeValues(2 * src.count)
                for (k, v) in zip(src.keys, src.values) { try d.set(k, v) }
            }
            return .dict(d)
        case ("builtins", "set"), ("builtins", "frozenset"):
            return .set(try arena.copiedList(iterableItems(args.first)))
        case ("builtins", "list"):
            return .list(try arena.copiedList(iterableItems(args.first)))
        case ("builtins", "tuple"), ("torch", "Size"):
            return .tuple(try arena.copiedTuple(iterableItems(args.first)))
        case ("builtins", "bytearray"), ("builtins", "bytes"), ("_codecs", "encode"):
            try arena.budget.chargeBuilt(builtSize(args))
            return bytesValue(args)
        case ("builtins", "complex"):
            try arena.budget.chargeBuilt(builtSize(args))
            return .string("complex(" + args.map(scalarText).joined(separator: ", ") + ")")
        case ("builtins", "slice"):
            try arena.budget.chargeBuilt(builtSize(args))
            return .string("slice(" + args.map(scalarText).joined(separator: ", ") + ")")
        case ("torch", "device"):
            try arena.budget.chargeBuilt(builtSize(args))
            return .string(args.map { a -> String in
                if case .string(let s) = a { return s }
                return scalarText(a)
            }.joined(separator: ":"))
        case ("torch.serialization", "_get_layout"):
            if case .string(let s)? = args.first { return .string(s) }
            return .string("layout")
        case ("copyreg", "_reconstructor"):
            // copyreg._reconstructor(cls, base, state) is how protocols 0/1 write cls.__new__(cls).
            guard let cls = args.first else { return .invalid("copyreg._reconstructor called without arguments") }
            return try newObject(cls, args: [], kwargs: nil, machine: machine)
        case ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__"):
            guard let cls = args.first else { return .invalid("\(g.qualifiedName) called without arguments") }
            return try newObject(cls, args: Array(args.dropFirst()), kwargs: nil, machine: machine)
        case ("torch.jit._pickle", _):
            return args.first ?? .none
        case ("numpy.core.multiarray", "scalar"):
            return numpyScalar(args) ?? .object(arena.object(callable: callable, args: args))
        default:
            return .object(arena.object(callable: callable, args: args))
        }
    }

    /// NEWOBJ / NEWOBJ_EX / INST / OBJ: `cls.__new__(cls, *args)`; the state usually follows with BUILD.
    static func newObject(_ cls: PickleValue, args: [PickleValue], kwargs: PickleValue?, machine: PickleMachine) throws -> PickleValue {
        let arena = machine.arena
        if case .global(let raw) = cls {
            let g = canonical(raw)
            if !isAllowlisted(raw) {
                machine.noteForeign(raw, called: true)
            } else {
                switch g.qualifiedName {
                case "collections.OrderedDict", "builtins.dict", "collections.defaultdict": return .dict(arena.dict())
                case "builtins.set", "builtins.frozenset": return .set(try arena.copiedList(iterableItems(args.first)))
                case "builtins.list": return .list(arena.list())
                case "builtins.tuple", "torch.Size": return .tuple(try arena.copiedTuple(iterableItems(args.first)))
                default: break
                }
            }
        }
        return .object(arena.object(callable: cls, args: args, kwargs: kwargs))
    }

    /// BUILD: `obj.__setstate__(state)` or `obj.__dict__.update(state)`, recorded rather than run.
    static func build(_ target: PickleValue, state: PickleValue, machine: PickleMachine) throws {
        switch target {
        case .object(let o):
            if o.state == nil {
                o.state = state
            } else if let old = o.stateDict, case .dict(let new) = state {
                // A merge copies every item of the new state: charged, since BUILD can repeat on one object.
                try machine.arena.budget.chargeValues(2 * new.count)
                for (k, v) in zip(new.keys, new.values) { try old.set(k, v) }
            } else {
                o.state = state
            }
        case .dict(let d):
            d.attributes = state   // e.g. the `_metadata` of a state_dict; not items
        default:
            break                  // tensors (Parameter state), lists, …: nothing to record
        }
    }

    // MARK: interpreters

    /// `_rebuild_tensor(storage, storage_offset, size, stride)`, `_rebuild_tensor_v2(…, requires_grad, hooks[, metadata])`,
    /// `_rebuild_tensor_v3(…, requires_grad, hooks, dtype[, metadata])`.
    static func rebuildTensor(_ args: [PickleValue], function: String, dtypeArg: Int?, machine: PickleMachine) -> PickleValue {
        guard args.count >= 4 else { return .invalid("malformed \(function) call: \(args.count) arguments, expected at least 4") }
        guard case .storage(let storage) = args[0] else {
            return .invalid("malformed \(function) call: first argument is \(args[0].kindName), not a storage")
        }
        guard let offset = args[1].intValue else {
            return .invalid("malformed \(function) call: storage offset is \(args[1].kindName), not an int")
        }
        guard let size = intTuple(args[2]) else {
            return .invalid("malformed \(function) call: size is \(args[2].kindName), not a tuple of ints")
        }
        guard let stride = intTuple(args[3]) else {
            return .invalid("malformed \(function) call: stride is \(args[3].kindName), not a tuple of ints")
        }
        var dtypeName: String?
        if let i = dtypeArg {
            guard args.count > i, case .dtype(let name) = args[i] else {
                return .invalid("malformed \(function) call: no dtype argument")
            }
            dtypeName = name
        }
        machine.tensorsBuilt += 1
        return .tensor(TorchTensorRef(storage: storage, storageOffset: offset, size: size, stride: stride, dtypeName: dtypeName))
    }

    /// Bytes of the strings and bytes among `args` (what a call that joins or converts them copies).
    static func builtSize(_ args: [PickleValue]) -> Int {
        args.reduce(16) { n, a in
            switch a {
            case .string(let s): return n + s.utf8.count
            case .bytes(let b): return n + b.count
            case .list(let l): return n + l.items.count
            default: return n + 16
            }
        }
    }

    static func intTuple(_ v: PickleValue) -> [Int64]? {
        guard let items = v.sequenceItems else { return nil }
        var out: [Int64] = []
        out.reserveCapacity(items.count)
        for i in items {
            guard case .int(let x) = i else { return nil }
            out.append(x)
        }
        return out
    }

    static func iterableItems(_ v: PickleValue?) -> [PickleValue] {
        switch v {
        case .list(let l)?: return l.items
        case .tuple(let t)?: return t.items
        case .set(let s)?: return s.items
        case .dict(let d)?: return d.keys
        default: return []
        }
    }

    /// `bytearray(b)`, `bytes(b)`, `_codecs.encode(str, "latin1")` (how protocol 2 writes bytes).
    static func bytesValue(_ args: [PickleValue]) -> PickleValue {
        switch args.first {
        case nil: return .bytes([])
        case .bytes(let b)?: return .bytes(b)
        case .string(let s)?:
            let enc = args.count > 1 ? (args[1].stringValue ?? "").lowercased() : "utf-8"
            if enc == "latin1" || enc == "latin-1" || enc == "iso-8859-1" {
                if let d = s.data(using: .isoLatin1) { return .bytes([UInt8](d)) }
                var out: [UInt8] = []
                for u in s.unicodeScalars {
                    guard u.value < 256 else { return .string(s) }
                    out.append(UInt8(u.value))
                }
                return .bytes(out)
            }
            return .bytes(Array(s.utf8))
        case .list(let l)?:
            var out: [UInt8] = []
            for v in l.items {
                guard case .int(let i) = v, (0...255).contains(i) else { return .invalid("bytearray of non-byte values") }
                out.append(UInt8(i))
            }
            return .bytes(out)
        default: return .invalid("bytes built from \(args[0].kindName)")
        }
    }

    /// A scalar as metadata prints it (`None`, `True`, `3`); anything else by its kind.
    static func scalarText(_ v: PickleValue) -> String {
        switch v {
        case .none, .bool, .int, .bigInt, .float, .string: return PickleFlattener.metaValue(v).description
        default: return v.kindName
        }
    }

    /// `numpy.core.multiarray.scalar(dtype, bytes)`: a numpy scalar such as `best_acc = np.float64(0.76)`.
    /// The dtype is itself an inert `numpy.dtype('f8', …)` object whose BUILD state holds the byte order.
    static func numpyScalar(_ args: [PickleValue]) -> PickleValue? {
        guard args.count >= 2, case .object(let dt) = args[0], dt.global.map(canonical)?.qualifiedName == "numpy.dtype",
              case .string(let code)? = dt.args.first else { return nil }
        let raw: [UInt8]
        switch args[1] {
        case .bytes(let b): raw = b
        case .string(let s): // protocol 2 writes the payload as a latin-1 str
            guard case .bytes(let b) = bytesValue([.string(s), .string("latin1")]) else { return nil }
            raw = b
        default: return nil
        }
        var bigEndian = false
        if case .tuple(let st)? = dt.state, st.items.count > 1, case .string(let order) = st.items[1] { bigEndian = order == ">" }
        func uint(_ n: Int) -> UInt64? {
            guard raw.count == n else { return nil }
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(raw[bigEndian ? n - 1 - i : i]) << (8 * UInt64(i)) }
            return v
        }
        switch code {
        case "f8": return uint(8).map { .float(Double(bitPattern: $0)) }
        case "f4": return uint(4).map { .float(Double(Float(bitPattern: UInt32($0)))) }
        case "i8": return uint(8).map { .int(Int64(bitPattern: $0)) }
        case "i4": return uint(4).map { .int(Int64(Int32(bitPattern: UInt32($0)))) }
        case "i2": return uint(2).map { .int(Int64(Int16(bitPattern: UInt16($0)))) }
        case "i1": return uint(1).map { .int(Int64(Int8(bitPattern: UInt8($0)))) }
        case "u1": return uint(1).map { .int(Int64($0)) }
        case "u2": return uint(2).map { .int(Int64($0)) }
        case "u4": return uint(4).map { .int(Int64($0)) }
        case "b1": return uint(1).map { .bool($0 != 0) }
        default: return nil
        }
    }

    // MARK: persistent ids

    /// Interprets a `torch.save` persistent id:
    /// zip: `('storage', storage_type, key, location, numel)`;
    /// legacy: `('storage', storage_type, root_key, location, numel, view_metadata)` and `('module', cls, file, source)`.
    static func persistentStorage(_ pid: PickleValue, legacy: Bool) throws -> PickleValue {
        guard let items = pid.sequenceItems, let tag = items.first else {
            throw CheckpointError("persistent id is \(pid.kindName), expected a tuple such as ('storage', type, key, location, numel)")
        }
        let typename: String
        switch tag {
        case .string(let s): typename = s
        case .bytes(let b): typename = PickleText.utf8OrLatin1(b)
        default: throw CheckpointError("persistent id starts with \(tag.kindName), expected 'storage'")
        }
        if legacy && typename == "module" {
            guard items.count >= 2 else { throw CheckpointError("malformed ('module', …) persistent id") }
            return items[1]
        }
        guard typename == "storage" else { throw CheckpointError("unknown persistent id type '\(typename.prefix(40))'") }
        let expected = legacy ? 6 : 5
        guard items.count == expected else {
            throw CheckpointError("storage persistent id has \(items.count) fields, expected \(expected)")
        }
        guard case .global(let raw) = items[1] else {
            throw CheckpointError("storage persistent id names \(items[1].kindName) as its storage type")
        }
        let g = canonical(raw)
        let typeName = g.qualifiedName
        var dtype: DType?
        var elementSize: Int?
        if isStorageType(g), let known = storageTypes[g.name] { dtype = known.dtype; elementSize = known.elementSize }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        case .bytes(let b): key = PickleText.utf8OrLatin1(b)
        default: throw CheckpointError("storage key is \(items[2].kindName), expected a string")
        }
        let location = TorchGlobals.scalarText(items[3])
        guard case .int(let n) = items[4], n >= 0 else {
            throw CheckpointError("storage '\(key)' declares element count \(scalarText(items[4])), expected a non-negative int")
        }
        let numel = Int(n)
        if legacy, let view = items[5].sequenceItems {
            // (view_key, offset, view_size), in elements of the storage's dtype.
            guard view.count == 3, case .int(let off) = view[1], case .int(let size) = view[2], off >= 0, size >= 0 else {
                throw CheckpointError("storage '\(key)' has malformed view metadata")
            }
            let (end, o) = off.addingReportingOverflow(size)
            guard !o, end <= n else {
                throw CheckpointError("storage view of \(size) elements at element \(off) exceeds its root storage '\(key)' of \(n) elements")
            }
            return .storage(TorchStorageRef(key: key, typeName: typeName, dtype: dtype, elementSize: elementSize, numel: Int(size),
                                            location: location, viewOffset: Int(off), rootNumel: numel))
        }
        return .storage(TorchStorageRef(key: key, typeName: typeName, dtype: dtype, elementSize: elementSize, numel: numel, location: location))
    }

    /// "torch.ComplexFloatStorage (complex64)" for errors about unsupported storages.
    static func describeStorageType(_ s: TorchStorageRef) -> String {
        let name = s.typeName.split(separator: ".").last.map(String.init) ?? s.typeName
        if let known = storageTypes[name] { return "\(s.typeName) (\(known.torchName))" }
        return s.typeName
    }
}
