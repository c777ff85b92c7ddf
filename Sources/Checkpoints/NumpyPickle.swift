import TensorCore

/// numpy arrays inside pickles (a dict of arrays saved with `allow_pickle`, arrays inside `torch.save`), read as
/// data: `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` followed by BUILD with the state
/// `(version, shape, dtype, is_fortran, raw bytes)`, and protocol 5's `numpy.core.numeric._frombuffer(buffer,
/// dtype, shape, order)`; the dtype is `numpy.dtype(code, False, True)` with BUILD state `(3, byte order, …)`, the
/// raw bytes come as bytes or as `_codecs.encode(str, 'latin1')`. Both `numpy.core` and `numpy._core` spellings.
/// Nothing is imported or run: the values the pickle machine recorded are interpreted here. Object arrays and
/// dtypes a tensor cannot hold are listed as unsupported tensors, naming what they are.
enum NumpyPickle {
    /// `numpy.core._internal._reconstruct` is how NumPy before 1.0 spelled it (same arguments; numpy still loads it).
    static let reconstruct: Set<String> = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                                           "numpy.core._internal._reconstruct"]
    static let frombuffer: Set<String> = ["numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"]

    /// Whether `o` is a pickled numpy array (a leaf for the flattener).
    static func isArray(_ o: PickleObject) -> Bool {
        guard let g = o.global?.qualifiedName else { return false }
        return reconstruct.contains(g) || frombuffer.contains(g)
    }

    /// The tensor of a pickled array (an in-memory entry). Throws `UnsupportedTensor.Kind` for arrays no tensor
    /// holds (object or string arrays) and `CheckpointError` for malformed ones.
    static func tensor(_ o: PickleObject, name: String) throws -> TensorEntry {
        let what = o.global?.qualifiedName ?? "numpy array"
        func bad(_ why: String) -> CheckpointError { CheckpointError("malformed pickled numpy array (\(what)): \(why)", key: name) }
        let shapeValue: PickleValue, dtypeValue: PickleValue, fortran: Bool, data: PickleValue
        if reconstruct.contains(what) {
            guard case .tuple(let st)? = o.state, st.items.count == 5 else { throw bad("BUILD state is not (version, shape, dtype, is_fortran, data)") }
            shapeValue = st.items[1]; dtypeValue = st.items[2]; data = st.items[4]
            guard case .bool(let f) = st.items[3] else { throw bad("is_fortran is \(st.items[3].kindName)") }
            fortran = f
        } else {
            guard o.args.count == 4 else { throw bad("\(o.args.count) arguments, expected (buffer, dtype, shape, order)") }
            data = o.args[0]; dtypeValue = o.args[1]; shapeValue = o.args[2]
            guard case .string(let order) = o.args[3], order == "C" || order == "F" else { throw bad("order is not 'C' or 'F'") }
            fortran = order == "F"
        }
        guard let dims = TorchGlobals.intTuple(shapeValue), dims.allSatisfy({ $0 >= 0 }) else { throw bad("shape is not a tuple of non-negative ints") }
        let shape = dims.map { Int($0) }
        let descr = try dtypeDescr(dtypeValue, bad: bad)
        let bytes: [UInt8]
        switch data {
        case .bytes(let b): bytes = b
        case .string(let s):
            guard case .bytes(let b) = TorchGlobals.bytesValue([.string(s), .string("latin1")]) else { throw bad("data string is not latin-1") }
            bytes = b
        default:
            if descr.dropFirst().hasPrefix("O") { throw UnsupportedTensor.Kind(what: "a numpy object array (\(what))") }
            throw bad("data is \(data.kindName), expected bytes")
        }
        guard let count = ShapeMath.elementCount(shape) else { throw bad("shape \(shape) overflows") }
        let kind: NPYHeader.Kind
        do { kind = try NPYHeader.parseDescr(descr, offset: 0) } catch {
            throw UnsupportedTensor.Kind(what: "a numpy array of dtype '\(descr)' (\(what))")
        }
        guard case .tensor(let layout) = kind else { throw UnsupportedTensor.Kind(what: "a numpy string array '\(descr)' (\(what))") }
        let header = NPYHeader(descr: descr, kind: kind, fortranOrder: fortran, shape: shape, elementCount: count, dataOffset: 0)
        try CheckpointError.withContext(key: name) { try header.checkDataSize(bytes.count) }
        let t = try CheckpointError.withContext(key: name) { try header.decode(bytes, layout) }
        return TensorEntry(name: name, tensor: t, location: "pickled numpy array")
    }

    /// The elements of a pickled object array (its BUILD data is a list), or nil.
    static func objectItems(_ o: PickleObject) -> [PickleValue]? {
        guard let g = o.global?.qualifiedName, reconstruct.contains(g), case .tuple(let st)? = o.state, st.items.count == 5,
              case .list(let l) = st.items[4] else { return nil }
        return l.items
    }

    static func isZeroDimensional(_ o: PickleObject) -> Bool {
        guard case .tuple(let st)? = o.state, st.items.count == 5, let dims = TorchGlobals.intTuple(st.items[1]) else { return false }
        return dims.isEmpty
    }

    /// A `.npy` object array: the pickle of the array after the header, run by the safe pickle machine (no
    /// persistent ids, nothing imported). numpy arrays, dicts, lists and scalars in it come out under dotted names
    /// below `name` (element i of the array as `name.i`, in C order); any other global refuses the file, naming it.
    static func objectArray(_ buf: UnsafeRawBufferPointer, baseOffset: Int, name: String) throws -> PickleFlattener.Output {
        let machine = PickleMachine()
        defer { machine.dismantle() }
        machine.persistentLoad = { _ in throw CheckpointError("object array pickle uses a persistent id (not numpy data)") }
        let (root, _) = try machine.run(buf, baseOffset: baseOffset)
        if let why = machine.foreignGlobalSummary {
            throw CheckpointError("refusing object array: its pickle \(why); only numpy arrays, dtypes and plain containers are read", key: name)
        }
        let flattener = PickleFlattener(makeTensor: { n, _ in throw CheckpointError("a torch tensor in a numpy object array", key: n) })
        var out = try flattener.flatten(root)
        func rename(_ n: String) -> String { n.isEmpty ? name : name + "." + n }
        for i in out.tensors.indices { out.tensors[i].name = rename(out.tensors[i].name) }
        out.metadata = out.metadata.map { MetadataEntry(name: rename($0.name), value: $0.value) }
        out.unsupported = out.unsupported.map { UnsupportedTensor(name: rename($0.name), what: $0.what) }
        return out
    }

    /// `numpy.dtype('f4', False, True)` with BUILD state `(3, '<', …)` → "<f4".
    static func dtypeDescr(_ v: PickleValue, bad: (String) -> CheckpointError) throws -> String {
        guard case .object(let dt) = v, dt.global.map(TorchGlobals.canonical)?.qualifiedName == "numpy.dtype",
              case .string(let code)? = dt.args.first else { throw bad("dtype is \(v.kindName), not numpy.dtype") }
        var order = "|"
        if case .tuple(let st)? = dt.state, st.items.count > 1, case .string(let o) = st.items[1] { order = o == "=" ? "<" : o }
        return order + code
    }
}
