import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads pre-1.6 `torch.save` checkpoints (e.g. torchvision's `resnet18-5c106cde.pth`): a sequence of pickles
/// — the magic number, the protocol version (1001), a sys_info dict, the object pickle (persistent ids
/// `('storage', storage_type, root_key, location, numel, view_metadata)`), the list of storage keys — followed,
/// for each key in that order, by an 8-byte little-endian element count and the storage's raw little-endian bytes.
/// The file is memory-mapped; opening walks the record headers only.
package enum PyTorchLegacyReader {
    /// 0x1950a86a20f9469cfc6c in decimal.
    static let magicNumber = "119547037146038801333356"
    static let protocolVersion: Int64 = 1001

    public static func read(path: String) throws -> StateDict {
        let file = try MappedFile(path: path)
        let buf = file.bytes
        guard buf.count > 0 else { throw CheckpointError("file is empty", file: path) }

        // 1. Magic number. A file that is some other pickle is still parsed safely, so a payload can be named.
        let first = PickleMachine()
        defer { first.dismantle() }
        let (magic, afterMagic) = try first.run(buf, from: 0)
        guard case .bigInt(let m) = magic, m == magicNumber else {
            if let why = first.foreignGlobalSummary {
                throw CheckpointError("refusing pickle: it \(why) and holds no tensors", offset: 0)
            }
            throw CheckpointError("not a torch.save checkpoint: the file is a pickle of \(magic.kindName), not the legacy magic number", offset: 0)
        }
        // 2. Protocol version.
        let (version, afterVersion) = try simplePickle(buf, at: afterMagic)
        guard case .int(protocolVersion) = version else {
            throw CheckpointError("unsupported legacy protocol version \(TorchGlobals.scalarText(version)) (expected 1001)", offset: afterMagic)
        }
        // 3. sys_info ({'protocol_version', 'little_endian', 'type_sizes'}). Storage data is little-endian
        //    regardless (torch writes and reads it so), so only its well-formedness matters.
        let (sysInfo, afterSysInfo) = try simplePickle(buf, at: afterVersion)
        guard case .dict = sysInfo else {
            throw CheckpointError("legacy sys_info is \(sysInfo.kindName), expected a dict", offset: afterVersion)
        }

        // 4. The object pickle. Remember the element size each storage key is first used with.
        let machine = PickleMachine()
        defer { machine.dismantle() }
        var firstUse: [String: TorchStorageRef] = [:]
        machine.persistentLoad = { pid in
            let v = try TorchGlobals.persistentStorage(pid, legacy: true)
            if case .storage(let s) = v, firstUse[s.key] == nil { firstUse[s.key] = s }
            return v
        }
        let (root, afterObject) = try machine.run(buf, from: afterSysInfo)

        // 5. The storage keys, in the order their records follow.
        let keysMachine = PickleMachine()
        defer { keysMachine.dismantle() }
        let (keyList, afterKeys) = try keysMachine.run(buf, from: afterObject)
        guard let keyItems = keyList.sequenceItems else {
            throw CheckpointError("storage key list is \(keyList.kindName), expected a list", offset: afterObject)
        }

        // 6. Walk the records: each is an 8-byte element count followed by the elements.
        var records: [String: (start: Int, bytes: Int)] = [:]
        var pos = afterKeys
        for item in keyItems {
            guard case .string(let key) = item else {
                throw CheckpointError("storage key list holds \(item.kindName), expected strings", offset: afterObject)
            }
            guard let use = firstUse[key] else {
                throw CheckpointError("storage key list names '\(key)' but the object pickle never uses it, so its element size is unknown",
                                      offset: pos)
            }
            guard let es = use.elementSize else {
                throw CheckpointError("storage '\(key)' has unknown storage type \(use.typeName), so the records after it cannot be located",
                                      offset: pos)
            }
            guard buf.count - pos >= 8 else {
                throw CheckpointError("file truncated: storage '\(key)' record at byte \(pos) lacks its 8-byte element count (file ends at byte \(buf.count))",
                                      offset: pos)
            }
            let count = buf.loadUnaligned(fromByteOffset: pos, as: UInt64.self).littleEndian
            let available = buf.count - pos - 8
            guard count <= UInt64(Int.max / es), Int(count) * es <= available else {
                throw CheckpointError("file truncated: storage '\(key)' record at byte \(pos) declares \(count) elements of \(es) bytes "
                                      + "but only \(available) bytes remain", offset: pos)
            }
            let bytes = Int(count) * es
            records[key] = (pos + 8, bytes)
            pos += 8 + bytes
        }

        let source = try? SourceFile(path: path)
        let resolve: (TorchStorageRef) throws -> StorageBacking = { st in
            guard let rec = records[st.key] else {
                throw CheckpointError("storage '\(st.key)' has no data record (missing from the storage key list)", offset: afterKeys)
            }
            let es = st.elementSize ?? 1
            let (declared, o) = st.rootNumel.multipliedReportingOverflow(by: es)
            guard !o, declared <= rec.bytes else {
                throw CheckpointError("storage '\(st.key)' declares \(st.rootNumel) elements of \(es) bytes but its record at byte \(rec.start - 8) "
                                      + "holds only \(rec.bytes) bytes", offset: rec.start - 8)
            }
            // A legacy storage view starts viewOffset elements into its root (checked ≤ rootNumel when parsed).
            let start = rec.start + st.viewOffset * es
            let key = st.key
            return StorageBacking(name: "storage '\(key)' at byte \(start)", byteCount: st.numel * es, bigEndian: false,
                                  locate: { "byte \(start + $0) (storage \(key))" },
                                  read: { offset, count in try file.copyReleasing(start + offset, count) },
                                  span: { offset, count in source.map { FileSpan(file: $0, offset: start + offset, count: count) } })
        }
        let flat = try TorchPickleResult.flatten(root, machine: machine, member: nil, resolve: resolve)
        var sd = StateDict(format: .pytorchLegacy, file: path, tensors: flat.tensors, metadata: flat.metadata)
        sd.unsupported = flat.unsupported
        sd.neutralisedGlobals = TorchPickleResult.neutralisedGlobals(machine)
        return sd
    }

    /// One of the small header pickles (no persistent ids, no globals expected).
    static func simplePickle(_ buf: UnsafeRawBufferPointer, at offset: Int) throws -> (PickleValue, Int) {
        let m = PickleMachine()
        defer { m.dismantle() }
        let (v, end) = try m.run(buf, from: offset)
        // Scalars and flat dicts survive dismantling only as values; copy what callers inspect.
        if case .dict = v { return (.dict(PickleDict()), end) }
        return (v, end)
    }
}
