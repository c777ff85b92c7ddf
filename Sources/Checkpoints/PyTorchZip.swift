import TensorCore

/// Reads `torch.save` zip checkpoints (PyTorch ≥ 1.6): `<prefix>/data.pkl` (the object pickle, whose persistent
/// ids are `('storage', storage_type, key, location, numel)`), `<prefix>/data/<key>` (raw storage bytes),
/// `<prefix>/byteorder` ("little" / "big"). The prefix is whatever folder name the archive uses.
/// Opening reads only data.pkl and the byteorder record; each tensor's loader reads just the bytes of its view.
package enum PyTorchZipReader {
    public static func read(path: String, options: ReadOptions = ReadOptions()) throws -> StateDict {
        try read(ZipArchive(path: path, verifyCRC: options.verifyCRC))
    }

    /// Reads the `torch.save` archive `zip` (a whole file, or a byte range of one).
    static func read(_ zip: ZipArchive) throws -> StateDict {
        let path = zip.path
        let candidates = zip.members.filter { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        guard let pkl = candidates.min(by: { depth($0.name) < depth($1.name) }) else {
            throw CheckpointError("zip archive has no data.pkl record, so it is not a torch.save checkpoint", file: path)
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))

        var bigEndian = false
        if let bo = zip.member(named: prefix + "byteorder") {
            guard bo.size <= 64 else { throw CheckpointError("byteorder record holds \(bo.size) bytes", member: bo.name) }
            let text = PickleText.trim(String(decoding: try zip.read(bo), as: UTF8.self))
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw CheckpointError("unknown byte order '\(text.prefix(40))' (expected little or big)", member: bo.name)
            }
        }

        let limits = PickleLimits.standard
        guard pkl.size <= limits.maxPickleBytes else {
            throw CheckpointError("data.pkl of \(pkl.size) bytes exceeds the \(limits.maxPickleBytes)-byte pickle limit", member: pkl.name)
        }
        let pickle = try zip.read(pkl)
        let machine = PickleMachine(limits: limits)
        defer { machine.dismantle() }
        machine.persistentLoad = { try TorchGlobals.persistentStorage($0, legacy: false) }
        let root = try CheckpointError.withContext(member: pkl.name) {
            try pickle.withUnsafeBytes { try machine.run($0).value }
        }

        let resolve: (TorchStorageRef) throws -> StorageBacking = { st in
            let recordName = prefix + "data/" + st.key
            guard let m = zip.member(named: recordName) else {
                throw CheckpointError("storage '\(st.key)' has no record '\(recordName)' in the archive", member: pkl.name)
            }
            let es = st.elementSize ?? 1
            let (declared, o) = st.numel.multipliedReportingOverflow(by: es)
            guard !o, declared <= m.size else {
                throw CheckpointError("storage '\(st.key)' declares \(st.numel) elements of \(es) bytes (\(o ? "overflow" : String(declared)) bytes) "
                                      + "but its record holds only \(m.size) bytes", member: m.name)
            }
            return StorageBacking(name: m.name, byteCount: declared, bigEndian: bigEndian,
                                  locate: { "\(m.name) +\($0)" },
                                  read: { offset, count in try zip.read(m, offset: offset, count: count) },
                                  span: { offset, count in zip.span(m, offset: offset, count: count) })
        }
        let flat = try TorchPickleResult.flatten(root, machine: machine, member: pkl.name, resolve: resolve)
        var sd = StateDict(format: .pytorchZip, file: path, tensors: flat.tensors, metadata: flat.metadata)
        sd.unsupported = flat.unsupported
        sd.neutralisedGlobals = TorchPickleResult.neutralisedGlobals(machine)
        return sd
    }

    static func depth(_ name: String) -> Int { name.reduce(0) { $0 + ($1 == "/" ? 1 : 0) } }
}

/// What both PyTorch readers do once the object pickle has run: flatten it, and refuse a pickle that yields no
/// tensors but names a global outside the allowlist (the shape of a code-execution payload).
enum TorchPickleResult {
    /// The non-allowlisted globals the machine met, as users name them (see `StateDict.neutralisedGlobals`).
    static func neutralisedGlobals(_ machine: PickleMachine) -> [String] {
        machine.foreignGlobals.map { $0.global.displayName }
    }

    static func flatten(_ root: PickleValue, machine: PickleMachine, member: String?,
                        resolve: @escaping (TorchStorageRef) throws -> StorageBacking) throws -> PickleFlattener.Output {
        let flattener = PickleFlattener(makeTensor: { name, t in
            try TorchTensorFactory.entry(name: name, tensor: t, resolve: resolve)
        })
        let out: PickleFlattener.Output
        do {
            out = try CheckpointError.withContext(member: member) { try flattener.flatten(root) }
        } catch {
            // A payload that also trips the flattener is still reported as what it is.
            if machine.tensorsBuilt == 0, machine.unsupportedTensorsBuilt == 0, let why = machine.foreignGlobalSummary {
                throw CheckpointError("refusing pickle: it \(why) and holds no tensors", member: member)
            }
            throw error
        }
        if out.tensors.isEmpty, out.unsupported.isEmpty, let why = machine.foreignGlobalSummary {
            throw CheckpointError("refusing pickle: it \(why) and holds no tensors", member: member)
        }
        return out
    }
}
