import TensorCore

/// Flattens an unpickled checkpoint into dotted names, iteratively.
///
/// Dicts, OrderedDicts, lists, tuples and sets nest to any depth (up to `maxDepth`): keys and indices become name
/// components (`state_dict.layer1.0.conv1.weight`, `optimizer.state.0.momentum_buffer`). A pickled `nn.Module`
/// contributes exactly what `module.state_dict()` would: its `_parameters`, then its persistent `_buffers`,
/// then each child module, skipping None entries. Non-tensor leaves become metadata. Order is pickle order.
struct PickleFlattener {
    var maxDepth = 1000
    /// Values visited (shared sub-graphs are visited once per path, so this bounds DAG blow-ups).
    var maxVisits = 10_000_000
    /// Total bytes of emitted names.
    var maxNameBytes = 256 << 20
    /// Tensors plus metadata entries.
    var maxEntries = 1_000_000

    /// Builds the entry of a tensor found at `name`.
    let makeTensor: (_ name: String, _ tensor: TorchTensorRef) throws -> TensorEntry

    struct Output {
        var tensors: [TensorEntry] = []
        var metadata: [MetadataEntry] = []
        var unsupported: [UnsupportedTensor] = []
    }

    /// The children of one container, enumerated lazily (a million-item list is not copied into name pairs).
    enum Children {
        /// Items named by their index.
        case items([PickleValue])
        /// Dict entries named by their keys.
        case dict(keys: [PickleValue], values: [PickleValue])
        /// Already-named entries (a module's state_dict contributions).
        case named([(String, PickleValue)])

        var count: Int {
            switch self {
            case .items(let v): return v.count
            case .dict(let k, _): return k.count
            case .named(let n): return n.count
            }
        }

        func child(_ i: Int, of name: String) throws -> (String, PickleValue) {
            switch self {
            case .items(let v): return (String(i), v[i])
            case .dict(let keys, let values):
                guard let component = PickleFlattener.keyText(keys[i]) else {
                    throw CheckpointError("dict key of type \(keys[i].kindName) cannot be part of a name", key: name.isEmpty ? nil : name)
                }
                return (component, values[i])
            case .named(let n): return n[i]
            }
        }
    }

    private struct Frame {
        var children: Children
        var next = 0
        var prefix: String
        var depth: Int
    }

    func flatten(_ root: PickleValue) throws -> Output {
        var out = Output()
        var seen = Set<String>()
        var visits = 0
        var nameBytes = 0
        var frames: [Frame] = []

        /// Charges a name of `length` bytes (containers' names too) before it is built: a memoised 1 MiB string
        /// used as the key of 1000 nested dicts would otherwise build names of up to 1 GB each.
        func chargeName(_ length: Int, prefix: String) throws {
            nameBytes += length
            guard nameBytes <= maxNameBytes else {
                let shortName = prefix.count > 60 ? String(prefix.prefix(60)) + "…" : prefix
                throw CheckpointError("flattened names exceed \(maxNameBytes) bytes (is the pickle sharing containers or long keys many times over?)",
                                      key: shortName.isEmpty ? nil : shortName)
            }
        }

        func emit(_ name: String, _ v: PickleValue) throws {
            let shortName = name.count > 60 ? String(name.prefix(60)) + "…" : name
            guard seen.count < maxEntries else {
                throw CheckpointError("checkpoint flattens to more than \(maxEntries) tensors and metadata entries", key: shortName)
            }
            guard seen.insert(name).inserted else {
                throw CheckpointError("two entries flatten to the same name", key: name)
            }
            // A tensor of a dtype or kind this reader cannot represent is listed, not an error for the whole file.
            @discardableResult
            func tensor(_ t: TorchTensorRef, as name: String) throws -> Bool {
                do { out.tensors.append(try makeTensor(name, t)); return true } catch let u as UnsupportedTensor.Kind {
                    out.unsupported.append(UnsupportedTensor(name: name, what: u.what))
                    return false
                }
            }
            @discardableResult
            func tensor(_ t: TorchTensorRef) throws -> Bool { try tensor(t, as: name) }
            switch v {
            case .tensor(let t):
                try tensor(t)
            case .quantizedTensor(let q):
                // The integer data under the name, then its quantizer parameters beside it (QuantizedNaming).
                guard try tensor(q.data) else { break }
                for c in q.companions {
                    let cname = name + "." + c.suffix
                    guard seen.count < maxEntries, seen.insert(cname).inserted else {
                        throw CheckpointError("quantized tensor's \(c.suffix) entry collides with another entry of the same name", key: cname)
                    }
                    try chargeName(cname.utf8.count, prefix: cname)
                    switch c.value {
                    case .scalar(let dtype, let bytes):
                        out.tensors.append(TensorEntry(name: cname, tensor: Tensor(dtype: dtype, shape: [], bytes: bytes),
                                                       location: "quantizer parameter of '\(name)'"))
                    case .tensor(let t):
                        try tensor(t, as: cname)
                    }
                }
            case .storage(let s):
                try tensor(TorchTensorRef(storage: s, storageOffset: 0, size: [Int64(s.numel)], stride: [1]))
            case .object(let o) where NumpyPickle.isArray(o):
                do { out.tensors.append(try NumpyPickle.tensor(o, name: name)) } catch let u as UnsupportedTensor.Kind {
                    out.unsupported.append(UnsupportedTensor(name: name, what: u.what))
                }
            case .unsupportedTensor(let what):
                out.unsupported.append(UnsupportedTensor(name: name, what: what))
            case .invalid(let message):
                throw CheckpointError(message, key: name)
            default:
                out.metadata.append(MetadataEntry(name: name, value: Self.metaValue(v)))
            }
        }

        /// Visits `v` at `name`: containers push a frame, leaves are emitted.
        func visit(_ name: String, _ v: PickleValue, depth: Int) throws {
            visits += 1
            guard visits <= maxVisits else {
                throw CheckpointError("checkpoint has more than \(maxVisits) values to flatten (is it sharing containers many times over?)")
            }
            guard let children = try Self.children(of: v, name: name) else {
                try emit(name, v)
                return
            }
            guard depth < maxDepth else {
                throw CheckpointError("containers nested deeper than \(maxDepth) levels (or a container that contains itself)",
                                      key: name.count > 60 ? String(name.prefix(60)) + "…" : name)
            }
            if children.count > 0 { frames.append(Frame(children: children, prefix: name, depth: depth + 1)) }
        }

        // The root: a bare tensor is named "tensor", any other bare leaf "value".
        switch root {
        case .tensor, .storage: try emit("tensor", root)
        default:
            if try Self.children(of: root, name: "") == nil { try emit("value", root) } else { try visit("", root, depth: 0) }
        }
        while !frames.isEmpty {
            let i = frames.count - 1
            guard frames[i].next < frames[i].children.count else {
                frames.removeLast()
                continue
            }
            let prefix = frames[i].prefix
            let (component, value) = try frames[i].children.child(frames[i].next, of: prefix)
            frames[i].next += 1
            try chargeName(prefix.utf8.count + 1 + component.utf8.count, prefix: prefix)
            try visit(prefix.isEmpty ? component : prefix + "." + component, value, depth: frames[i].depth)
        }
        return out
    }

    /// The children of a container, or nil for a leaf.
    static func children(of v: PickleValue, name: String) throws -> Children? {
        switch v {
        case .dict(let d):
            return .dict(keys: d.keys, values: d.values)
        case .list(let l):
            return .items(l.items)
        case .tuple(let t):
            return .items(t.items)
        case .set(let s):
            return .items(s.items)
        case .object(let o):
            if let items = NumpyPickle.objectItems(o) {
                // An object array's elements, by flat index; a 0-d one (np.save of a dict) is its one element.
                if NumpyPickle.isZeroDimensional(o), items.count == 1, let inner = try children(of: items[0], name: name) { return inner }
                return .items(items)
            }
            if NumpyPickle.isArray(o) { return nil }   // a leaf: the flattener reads it as a tensor
            if o.isModuleLike, let state = o.stateDict { return .named(try moduleChildren(state, name: name)) }
            if let body = graphModuleBody(o) { return .named(try moduleChildren(body, name: name)) }
            if let d = o.dictItems, d.count > 0 { return .dict(keys: d.keys, values: d.values) }
            if !o.listItems.isEmpty { return .items(o.listItems) }
            if let state = o.stateDict { return .dict(keys: state.keys, values: state.values) }
            // No state: the constructor arguments are the content (a namedtuple's fields), so tensors are not lost.
            if o.state == nil, !o.args.isEmpty { return .items(o.args) }
            return nil
        default:
            return nil
        }
    }

    /// The reducers `torch.save` uses for a `torch.fx.GraphModule` (what `symbolic_trace` and onnx2torch give):
    /// they take the module's `__dict__` (its "body") among their arguments, plus the generated code.
    static let graphModuleReducers: Set<String> = [
        "torch.fx.graph_module.reduce_graph_module", "torch.fx.graph_module.reduce_package_graph_module",
        "torch.fx.graph_module.reduce_deploy_graph_module",
    ]

    /// The body dict of a pickled GraphModule, read like any module's `__dict__` (so the names are
    /// `state_dict()`'s and the generated code is neither run nor kept as metadata), or nil.
    static func graphModuleBody(_ o: PickleObject) -> PickleDict? {
        guard let g = o.global, graphModuleReducers.contains(g.qualifiedName) else { return nil }
        for case .dict(let d) in o.args where d.get("_parameters") != nil && d.get("_modules") != nil { return d }
        return nil
    }

    static func dictChildren(_ d: PickleDict, name: String) throws -> [(String, PickleValue)] {
        var out: [(String, PickleValue)] = []
        out.reserveCapacity(d.count)
        for (k, v) in zip(d.keys, d.values) {
            guard let component = keyText(k) else {
                throw CheckpointError("dict key of type \(k.kindName) cannot be part of a name", key: name.isEmpty ? nil : name)
            }
            out.append((component, v))
        }
        return out
    }

    /// What `nn.Module.state_dict()` contributes for one module, given its pickled `__dict__`.
    static func moduleChildren(_ state: PickleDict, name: String) throws -> [(String, PickleValue)] {
        var out: [(String, PickleValue)] = []
        var nonPersistent = Set<String>()
        if let np = state.get("_non_persistent_buffers_set") {
            for item in TorchGlobals.iterableItems(np) {
                if case .string(let s) = item { nonPersistent.insert(s) }
            }
            if case .object(let o) = np { // a set subclass rebuilt inertly
                for item in TorchGlobals.iterableItems(o.args.first) { if case .string(let s) = item { nonPersistent.insert(s) } }
            }
        }
        func entries(_ field: String) throws -> [(String, PickleValue)] {
            guard let v = state.get(field) else { return [] }
            let items: [(String, PickleValue)]
            switch v {
            case .dict(let d): items = try dictChildren(d, name: name)
            case .object(let o):
                if let d = o.dictItems { items = try dictChildren(d, name: name) } else { items = [] }
            case .none: items = []
            default: throw CheckpointError("module field \(field) is \(v.kindName), expected a dict", key: name.isEmpty ? nil : name)
            }
            return items.filter { if case .none = $0.1 { return false } else { return true } }
        }
        out += try entries("_parameters")
        out += try entries("_buffers").filter { !nonPersistent.contains($0.0) }
        out += try entries("_modules")
        return out
    }

    /// A dict key as a name component: strings as they are, integers in decimal.
    static func keyText(_ k: PickleValue) -> String? {
        switch k {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bigInt(let s): return s
        case .bool(let b): return b ? "True" : "False"
        case .float(let d): return String(d)
        case .none: return "None"
        case .bytes(let b): return PickleText.utf8OrLatin1(b)
        case .dtype(let d): return "torch.\(d)"
        case .global(let g): return g.qualifiedName
        case .tuple(let t):
            var parts: [String] = []
            for i in t.items {
                if case .tuple = i { return nil }   // one level only: no recursion on input
                guard let p = keyText(i) else { return nil }
                parts.append(p)
            }
            return "(" + parts.joined(separator: ", ") + ")"
        default: return nil
        }
    }

    static func metaValue(_ v: PickleValue) -> MetaValue {
        switch v {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let s): return .bigInt(s)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .dtype(let d): return .string("torch.\(d)")
        case .global(let g): return .string(g.qualifiedName)
        case .object(let o): return .string("<\(o.typeName) object>")
        default: return .string("<\(v.kindName)>")
        }
    }
}
