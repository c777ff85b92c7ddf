/// Bounds on what one pickle may build. Every one is checked before the allocation it guards.
struct PickleLimits: Sendable {
    /// Largest pickle accepted, in bytes.
    var maxPickleBytes = 1 << 30
    /// Memo entries (PUT / MEMOIZE).
    var maxMemo = 1 << 20
    /// Values on the stack at once (a deeply nested literal keeps one value per level on it).
    var maxStack = 1 << 20
    /// Open MARKs at once.
    var maxMarks = 1 << 20
    /// Containers created plus items put into containers: bounds the memory a small (or highly compressed)
    /// pickle can make the machine hold, ~100 MB at this setting (a state dict uses a few per tensor).
    var maxValues = 2 << 20
    /// Bytes of dict keys hashed (each SETITEM hashes its key; a memoised 32 MiB key set a million times would
    /// hash for hours).
    var maxHashedBytes = 512 << 20
    /// Bytes of strings and bytes built by calls (`_codecs.encode`, `bytes(…)`, `torch.device(…)` on memoised strings).
    var maxBuiltBytes = 256 << 20

    static let standard = PickleLimits()
}

/// A safe, iterative pickle virtual machine (protocols 0–5, the opcodes `torch.save` and plain Python data use).
///
/// Safe by construction: nothing is imported or called. GLOBAL yields a symbolic `PickleGlobal`; REDUCE, NEWOBJ
/// and BUILD on a global the machine knows (`TorchGlobals`) build the corresponding value (a tensor view, an
/// OrderedDict, a set, …), and on any other global an inert `PickleObject` that only records its arguments.
/// Globals outside the allowlist are remembered so that a reader can refuse a pickle that holds no tensors but
/// calls, say, `os.system`. The machine never recurses, so nesting depth is bounded only by `PickleLimits`.
final class PickleMachine {
    let arena: PickleArena
    let limits: PickleLimits
    /// Maps a persistent id (BINPERSID / PERSID) to a value; nil means the pickle must not contain any.
    var persistentLoad: ((PickleValue) throws -> PickleValue)?

    /// Globals outside the allowlist, in first-seen order, and whether the pickle called them.
    private(set) var foreignGlobals: [(global: PickleGlobal, called: Bool)] = []
    private var foreignIndex: [PickleGlobal: Int] = [:]
    /// Tensors built by the rebuild functions (whether or not they end up in the result).
    var tensorsBuilt = 0
    /// Recognised tensors of unsupported kinds (quantized, sparse, meta, …).
    var unsupportedTensorsBuilt = 0

    init(limits: PickleLimits = .standard) {
        self.limits = limits
        arena = PickleArena(budget: PickleBudget(limits: limits))
    }

    /// Releases everything the pickle built, iteratively. Call when done with the result.
    func dismantle() {
        arena.dismantle()
    }

    /// The first non-allowlisted global, preferring one that was called, rendered for an error message.
    var foreignGlobalSummary: String? {
        if let c = foreignGlobals.first(where: { $0.called }) { return "calls non-allowlisted global \(c.global.displayName)" }
        if let r = foreignGlobals.first { return "references non-allowlisted global \(r.global.displayName)" }
        return nil
    }

    func noteForeign(_ g: PickleGlobal, called: Bool) {
        if let i = foreignIndex[g] {
            if called { foreignGlobals[i].called = true }
        } else {
            foreignIndex[g] = foreignGlobals.count
            foreignGlobals.append((g, called))
        }
    }

    /// Runs one pickle that starts at `start` in `buf` up to and including its STOP opcode.
    /// - Parameter baseOffset: added to positions in errors (the pickle's offset within the file).
    /// - Returns: the unpickled value and the position just after STOP.
    func run(_ buf: UnsafeRawBufferPointer, from start: Int = 0, baseOffset: Int = 0) throws -> (value: PickleValue, end: Int) {
        var run = Run(machine: self, buf: buf, pos: start, baseOffset: baseOffset)
        do {
            let v = try run.execute()
            return (v, run.pos)
        } catch let e as CheckpointError where e.offset == nil {
            // Budget errors from containers and calls: name the opcode that ran out.
            run.stack = []
            run.memo = []
            run.sparseMemo = [:]
            arena.dismantle()
            var withOp = e.context(offset: baseOffset + run.opStart)
            withOp.message = "pickle opcode \(run.opName): " + e.message
            throw withOp
        } catch {
            run.stack = []
            run.memo = []
            run.sparseMemo = [:]
            arena.dismantle()
            throw error
        }
    }
}

/// The state of one execution: cursor, stack, marks and memo.
private struct Run {
    let machine: PickleMachine
    let buf: UnsafeRawBufferPointer
    var pos: Int
    let baseOffset: Int
    var stack: [PickleValue] = []
    var marks: [Int] = []
    /// Memo slots; dense indices (MEMOIZE, and BINPUT as Python writes it) live in an array, others in `sparseMemo`.
    var memo: [PickleValue?] = []
    var sparseMemo: [Int: PickleValue] = [:]
    var memoCount = 0
    /// Position and name of the opcode being executed, for errors.
    var opStart = 0
    var opName = ""

    init(machine: PickleMachine, buf: UnsafeRawBufferPointer, pos: Int, baseOffset: Int) {
        self.machine = machine
        self.buf = buf
        self.pos = pos
        self.baseOffset = baseOffset
    }

    var arena: PickleArena { machine.arena }

    // MARK: errors

    func fail(_ message: String) -> CheckpointError {
        CheckpointError("pickle opcode \(opName): \(message)", offset: baseOffset + opStart)
    }

    // MARK: reading arguments

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= buf.count - pos else {
            throw CheckpointError("truncated pickle: opcode \(opName) needs \(n) more bytes at byte \(baseOffset + pos) but only \(buf.count - pos) remain",
                                  offset: baseOffset + opStart)
        }
        let s = UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + n)])
        pos += n
        return s
    }

    mutating func u8() throws -> UInt8 { try take(1)[0] }

    mutating func uintLE(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for i in stride(from: n - 1, through: 0, by: -1) { v = (v << 8) | UInt64(b[i]) }
        return v
    }

    /// A length argument, checked against the bytes that remain before anything is allocated.
    mutating func length(_ n: Int) throws -> Int {
        let raw = try uintLE(n)
        guard raw <= UInt64(buf.count - pos) else {
            throw CheckpointError("truncated pickle: opcode \(opName) declares \(raw) bytes at byte \(baseOffset + pos) but only \(buf.count - pos) remain",
                                  offset: baseOffset + opStart)
        }
        return Int(raw)
    }

    /// A newline-terminated argument of the text opcodes (without the newline).
    mutating func line() throws -> UnsafeRawBufferPointer {
        var i = pos
        while i < buf.count, buf[i] != 0x0A { i += 1 }
        guard i < buf.count else {
            throw CheckpointError("truncated pickle: opcode \(opName) argument has no terminating newline", offset: baseOffset + opStart)
        }
        let s = UnsafeRawBufferPointer(rebasing: buf[pos..<i])
        pos = i + 1
        return s
    }

    mutating func lineString() throws -> String {
        PickleText.utf8OrLatin1(try line())
    }

    // MARK: stack

    mutating func push(_ v: PickleValue) throws {
        guard stack.count < machine.limits.maxStack else { throw fail("stack holds more than \(machine.limits.maxStack) values") }
        stack.append(v)
    }

    mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return stack.removeLast()
    }

    func top() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let v = stack.last else { throw fail("stack underflow") }
        return v
    }

    mutating func spend(_ n: Int) throws {
        do { try arena.budget.chargeValues(n) } catch let e as CheckpointError { throw fail(e.message) }
    }

    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK to pop to (MARK missing)") }
        try spend(stack.count - m)
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    func memoLookup(_ index: Int) -> PickleValue? {
        if index < memo.count, let v = memo[index] { return v }
        return sparseMemo.isEmpty ? nil : sparseMemo[index]
    }

    mutating func memoPut(_ index: Int) throws {
        let v = try top()
        let limit = machine.limits.maxMemo
        if memoLookup(index) == nil {
            guard memoCount < limit else { throw fail("memo holds more than \(limit) entries") }
            memoCount += 1
        }
        if !sparseMemo.isEmpty { sparseMemo[index] = nil }
        if index < memo.count {
            memo[index] = v
        } else if index < memo.count + 4096 && index < 2 * memoCount + 4096 {
            // Dense slots grow only near the indices in use, so the array stays within ~2× the entry count.
            memo.append(contentsOf: repeatElement(nil, count: index - memo.count + 1))
            memo[index] = v
        } else {
            sparseMemo[index] = v
        }
    }

    mutating func memoGet(_ index: Int) throws {
        guard let v = memoLookup(index) else { throw fail("memo index \(index) was never stored") }
        try push(v)
    }

    mutating func decimalIndex() throws -> Int {
        let s = try lineString()
        guard let i = Int(s), i >= 0 else { throw fail("bad memo index '\(s.prefix(40))'") }
        return i
    }

    // MARK: the loop

    mutating func execute() throws -> PickleValue {
        let start = pos
        while true {
            opStart = pos
            guard arena.containerCount <= machine.limits.maxValues else { throw fail("pickle builds more than \(machine.limits.maxValues) containers") }
            guard pos - start <= machine.limits.maxPickleBytes else {
                throw CheckpointError("pickle exceeds the \(machine.limits.maxPickleBytes)-byte limit", offset: baseOffset + pos)
            }
            guard pos < buf.count else {
                opName = "STOP"
                throw CheckpointError("truncated pickle: ends at byte \(baseOffset + pos) without a STOP opcode", offset: baseOffset + pos)
            }
            let op = buf[pos]
            pos += 1
            opName = PickleOpcode.name(op)
            switch op {
            case 0x80: // PROTO
                let v = try u8()
                guard v <= 5 else { throw fail("unsupported pickle protocol \(v)") }
            case 0x95: // FRAME
                _ = try length(8)
            case 0x2E: // STOP
                return try pop()
            case 0x28: // MARK
                guard marks.count < machine.limits.maxMarks else { throw fail("more than \(machine.limits.maxMarks) open MARKs") }
                marks.append(stack.count)
            case 0x30: // POP
                if stack.count > (marks.last ?? 0) { stack.removeLast() } else { _ = try popMark() }
            case 0x31: // POP_MARK
                _ = try popMark()
            case 0x32: // DUP
                try push(try top())

            // numbers
            case 0x49: // INT
                let s = try lineString()
                if s == "01" { try push(.bool(true)) } else if s == "00" { try push(.bool(false)) } else {
                    guard let v = PickleText.decimalInteger(s) else { throw fail("bad integer literal '\(s.prefix(40))'") }
                    try push(v)
                }
            case 0x4A: // BININT
                try push(.int(Int64(Int32(bitPattern: UInt32(try uintLE(4))))))
            case 0x4B: // BININT1
                try push(.int(Int64(try u8())))
            case 0x4D: // BININT2
                try push(.int(Int64(try uintLE(2))))
            case 0x4C: // LONG
                var s = try lineString()
                if s.hasSuffix("L") { s.removeLast() }
                guard let v = PickleText.decimalInteger(s) else { throw fail("bad long literal '\(s.prefix(40))'") }
                try push(v)
            case 0x8A: // LONG1
                let n = Int(try u8())
                try push(PickleText.twosComplement(try take(n)))
            case 0x8B: // LONG4
                let raw = Int32(bitPattern: UInt32(try uintLE(4)))
                guard raw >= 0 else { throw fail("negative byte count \(raw)") }
                guard Int(raw) <= buf.count - pos else {
                    throw CheckpointError("truncated pickle: opcode LONG4 declares \(raw) bytes but only \(buf.count - pos) remain", offset: baseOffset + opStart)
                }
                try push(PickleText.twosComplement(try take(Int(raw))))
            case 0x47: // BINFLOAT (big-endian)
                let b = try take(8)
                var bits: UInt64 = 0
                for i in 0..<8 { bits = (bits << 8) | UInt64(b[i]) }
                try push(.float(Double(bitPattern: bits)))
            case 0x46: // FLOAT
                let s = try lineString()
                guard let d = PickleText.pythonFloat(s) else { throw fail("bad float literal '\(s.prefix(40))'") }
                try push(.float(d))
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))

            // strings and bytes
            case 0x58: // BINUNICODE
                try push(.string(PickleText.utf8(try take(try length(4)))))
            case 0x8C: // SHORT_BINUNICODE
                try push(.string(PickleText.utf8(try take(try length(1)))))
            case 0x8D: // BINUNICODE8
                try push(.string(PickleText.utf8(try take(try length(8)))))
            case 0x56: // UNICODE (raw-unicode-escape)
                try push(.string(PickleText.rawUnicodeEscape(try line())))
            case 0x53: // STRING (a quoted Python 2 str literal)
                guard let b = PickleText.quotedString(try line()) else { throw fail("STRING argument is not a quoted string literal") }
                try push(.string(PickleText.utf8OrLatin1(b)))
            case 0x54: // BINSTRING
                let raw = Int32(bitPattern: UInt32(try uintLE(4)))
                guard raw >= 0 else { throw fail("negative byte count \(raw)") }
                try push(.string(PickleText.utf8OrLatin1(try take(Int(raw)))))
            case 0x55: // SHORT_BINSTRING
                try push(.string(PickleText.utf8OrLatin1(try take(try length(1)))))
            case 0x42: // BINBYTES
                try push(.bytes(Array(try take(try length(4)))))
            case 0x43: // SHORT_BINBYTES
                try push(.bytes(Array(try take(try length(1)))))
            case 0x8E: // BINBYTES8
                try push(.bytes(Array(try take(try length(8)))))
            case 0x96: // BYTEARRAY8
                try push(.bytes(Array(try take(try length(8)))))

            // containers
            case 0x5D: try push(.list(arena.list()))      // EMPTY_LIST
            case 0x7D: try push(.dict(arena.dict()))      // EMPTY_DICT
            case 0x29: try push(.tuple(arena.tuple([])))  // EMPTY_TUPLE
            case 0x8F: try push(.set(arena.list()))       // EMPTY_SET
            case 0x74: // TUPLE
                try push(.tuple(arena.tuple(try popMark())))
            case 0x85, 0x86, 0x87: // TUPLE1/2/3
                let n = Int(op) - 0x84
                try spend(n)
                var items = [PickleValue](repeating: .none, count: n)
                for i in stride(from: n - 1, through: 0, by: -1) { items[i] = try pop() }
                try push(.tuple(arena.tuple(items)))
            case 0x6C: // LIST
                try push(.list(arena.list(try popMark())))
            case 0x91: // FROZENSET
                try push(.set(arena.list(try popMark())))
            case 0x64: // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("odd number of items (\(items.count)) for key/value pairs") }
                let d = arena.dict()
                for i in stride(from: 0, to: items.count, by: 2) { try d.set(items[i], items[i + 1]) }
                try push(.dict(d))
            case 0x61: // APPEND
                try spend(1)
                let v = try pop()
                try append([v], to: try top())
            case 0x65: // APPENDS
                let items = try popMark()
                try append(items, to: try top())
            case 0x90: // ADDITEMS
                let items = try popMark()
                try append(items, to: try top())
            case 0x73: // SETITEM
                try spend(2)
                let v = try pop()
                let k = try pop()
                try setItems([k, v], on: try top())
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("odd number of items (\(items.count)) for key/value pairs") }
                try setItems(items, on: try top())

            // memo
            case 0x70: try memoPut(try decimalIndex())                // PUT
            case 0x71: try memoPut(Int(try u8()))                     // BINPUT
            case 0x72: try memoPut(Int(try uintLE(4)))                // LONG_BINPUT
            case 0x94: try memoPut(memoCount)                         // MEMOIZE (index = number of entries)
            case 0x67: try memoGet(try decimalIndex())                // GET
            case 0x68: try memoGet(Int(try u8()))                     // BINGET
            case 0x6A: try memoGet(Int(try uintLE(4)))                // LONG_BINGET

            // globals and calls (interpreted symbolically, never executed)
            case 0x63: // GLOBAL
                let module = try lineString()
                let name = try lineString()
                try push(global(module, name))
            case 0x93: // STACK_GLOBAL
                let nameV = try pop()
                let moduleV = try pop()
                guard case .string(let name) = nameV, case .string(let module) = moduleV else {
                    throw fail("expects two strings, found \(moduleV.kindName) and \(nameV.kindName)")
                }
                try push(global(module, name))
            case 0x52: // REDUCE
                let args = try pop()
                let callable = try pop()
                guard let items = args.sequenceItems else { throw fail("arguments must be a tuple, found \(args.kindName)") }
                try push(try TorchGlobals.call(callable, args: items, machine: machine))
            case 0x81: // NEWOBJ
                let args = try pop()
                let cls = try pop()
                guard let items = args.sequenceItems else { throw fail("arguments must be a tuple, found \(args.kindName)") }
                try push(try TorchGlobals.newObject(cls, args: items, kwargs: nil, machine: machine))
            case 0x92: // NEWOBJ_EX
                let kwargs = try pop()
                let args = try pop()
                let cls = try pop()
                guard let items = args.sequenceItems else { throw fail("arguments must be a tuple, found \(args.kindName)") }
                try push(try TorchGlobals.newObject(cls, args: items, kwargs: kwargs, machine: machine))
            case 0x69: // INST
                let module = try lineString()
                let name = try lineString()
                let args = try popMark()
                let cls = global(module, name)
                try push(try TorchGlobals.newObject(cls, args: args, kwargs: nil, machine: machine))
            case 0x6F: // OBJ
                var items = try popMark()
                guard !items.isEmpty else { throw fail("no class on the stack") }
                let cls = items.removeFirst()
                try push(try TorchGlobals.newObject(cls, args: items, kwargs: nil, machine: machine))
            case 0x62: // BUILD
                let state = try pop()
                try TorchGlobals.build(try top(), state: state, machine: machine)
            case 0x51: // BINPERSID
                let pid = try pop()
                try push(try persistent(pid))
            case 0x50: // PERSID
                let pid = try lineString()
                try push(try persistent(.string(pid)))
            case 0x98: // READONLY_BUFFER: no effect on the value
                _ = try top()
            default:
                if PickleOpcode.known(op) {
                    throw fail("unsupported pickle opcode 0x\(String(op, radix: 16)) (\(opName))")
                }
                throw CheckpointError("unknown pickle opcode 0x\(String(op, radix: 16))", offset: baseOffset + opStart)
            }
        }
    }

    mutating func global(_ module: String, _ name: String) -> PickleValue {
        let (v, allowed) = TorchGlobals.resolve(PickleGlobal(module: module, name: name))
        if !allowed { machine.noteForeign(PickleGlobal(module: module, name: name), called: false) }
        return v
    }

    mutating func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard let load = machine.persistentLoad else { throw fail("a persistent id appears where none is expected") }
        do {
            return try load(pid)
        } catch let e as CheckpointError {
            throw e.context(offset: baseOffset + opStart)
        }
    }

    func append(_ items: [PickleValue], to target: PickleValue) throws {
        switch target {
        case .list(let l): l.items.append(contentsOf: items)
        case .set(let s): s.items.append(contentsOf: items)
        case .object(let o): o.listItems.append(contentsOf: items)
        default: throw fail("cannot append to \(target.kindName)")
        }
    }

    func setItems(_ items: [PickleValue], on target: PickleValue) throws {
        let d: PickleDict
        switch target {
        case .dict(let x): d = x
        case .object(let o):
            if let x = o.dictItems { d = x } else { d = arena.dict(); o.dictItems = d }
        default: throw fail("cannot set items on \(target.kindName)")
        }
        for i in stride(from: 0, to: items.count, by: 2) { try d.set(items[i], items[i + 1]) }
    }
}

/// Opcode names (from the pickle protocol's opcode table), for error messages.
enum PickleOpcode {
    static func name(_ op: UInt8) -> String {
        table[op] ?? "0x\(String(op, radix: 16))"
    }

    static func known(_ op: UInt8) -> Bool { table[op] != nil }

    static let table: [UInt8: String] = [
        0x28: "MARK", 0x2E: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
        0x4A: "BININT", 0x4B: "BININT1", 0x4C: "LONG", 0x4D: "BININT2", 0x4E: "NONE", 0x50: "PERSID",
        0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
        0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT",
        0x7D: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6A: "LONG_BINGET",
        0x6C: "LIST", 0x5D: "EMPTY_LIST", 0x6F: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT",
        0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
        0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
        0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8A: "LONG1", 0x8B: "LONG4",
        0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
        0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x8E: "BINBYTES8", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS",
        0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
        0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
}
