import Foundation
import TensorCore
import XCTest
@testable import Checkpoints

/// Writes pickle opcodes by hand, so each test states exactly the bytes it feeds the machine.
final class PickleWriter {
    var bytes: [UInt8]

    init(protocol proto: UInt8? = 2) { bytes = proto.map { [0x80, $0] } ?? [] }

    @discardableResult func raw(_ b: [UInt8]) -> Self { bytes += b; return self }
    @discardableResult func op(_ o: UInt8) -> Self { bytes.append(o); return self }
    @discardableResult func text(_ o: Character, _ s: String) -> Self {
        bytes.append(o.asciiValue!); bytes += Array(s.utf8); bytes.append(0x0A); return self
    }
    @discardableResult func str(_ s: String) -> Self {
        let u = Array(s.utf8)
        bytes.append(0x58); bytes += le(UInt32(u.count)); bytes += u; return self
    }
    @discardableResult func int(_ i: Int32) -> Self {
        if (0...255).contains(i) { bytes += [0x4B, UInt8(i)] } else { bytes.append(0x4A); bytes += le(UInt32(bitPattern: i)) }
        return self
    }
    @discardableResult func global(_ module: String, _ name: String) -> Self {
        bytes.append(0x63); bytes += Array("\(module)\n\(name)\n".utf8); return self
    }
    @discardableResult func mark() -> Self { op(0x28) }
    @discardableResult func tuple() -> Self { op(0x74) }
    @discardableResult func reduce() -> Self { op(0x52) }
    @discardableResult func stop() -> Self { op(0x2E) }
    @discardableResult func emptyDict() -> Self { op(0x7D) }
    @discardableResult func emptyList() -> Self { op(0x5D) }
    @discardableResult func emptyTuple() -> Self { op(0x29) }
    @discardableResult func setItems() -> Self { op(0x75) }
    @discardableResult func none() -> Self { op(0x4E) }

    /// `_rebuild_tensor_v2(('storage', <storage type>, key, 'cpu', numel) as a persistent id, offset, size, stride, False, OrderedDict())`.
    @discardableResult func tensor(storage: String = "FloatStorage", key: String, numel: Int32, offset: Int32,
                                            size: [Int32], stride: [Int32], legacyView: (String, Int32, Int32)?? = nil) -> Self {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark(); str("storage"); global("torch", storage); str(key); str("cpu"); int(numel)
        if let lv = legacyView {
            if let v = lv { mark(); str(v.0); int(v.1); int(v.2); tuple() } else { none() }
        }
        tuple(); op(0x51)               // BINPERSID
        int(offset)
        mark(); size.forEach { int($0) }; tuple()
        mark(); stride.forEach { int($0) }; tuple()
        op(0x89)                        // NEWFALSE
        global("collections", "OrderedDict"); emptyTuple(); reduce()
        tuple(); reduce()
        return self
    }

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

final class PickleMachineTests: XCTestCase {
    // MARK: helpers

    /// Runs the pickle and hands the value to `body` while the machine's containers are alive.
    func run<T>(_ w: PickleWriter, persistent: ((PickleValue) throws -> PickleValue)? = nil,
                _ body: (PickleValue, PickleMachine) throws -> T) throws -> T {
        let m = PickleMachine()
        defer { m.dismantle() }
        m.persistentLoad = persistent
        let v = try w.bytes.withUnsafeBytes { try m.run($0).value }
        return try body(v, m)
    }

    func errorText(_ w: PickleWriter, limits: PickleLimits = .standard) -> String {
        let m = PickleMachine(limits: limits)
        defer { m.dismantle() }
        do {
            _ = try w.bytes.withUnsafeBytes { try m.run($0) }
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    /// Flattens a pickle whose storages live in `storages` (key → little-endian bytes).
    func flatten(_ w: PickleWriter, storages: [String: [UInt8]] = [:], bigEndian: Bool = false) throws -> PickleFlattener.Output {
        try run(w, persistent: { try TorchGlobals.persistentStorage($0, legacy: false) }) { root, m in
            try TorchPickleResult.flatten(root, machine: m, member: "archive/data.pkl") { st in
                guard let data = storages[st.key] else { throw CheckpointError("no storage \(st.key)") }
                let key = st.key
                return StorageBacking(name: key, byteCount: data.count, bigEndian: bigEndian, locate: { "\(key) +\($0)" },
                                      read: { off, n in Array(data[off..<(off + n)]) })
            }
        }
    }

    func floats(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    // MARK: opcodes

    func testScalarsOfEveryEncoding() throws {
        let w = PickleWriter()
        w.mark()
        w.raw([0x4A, 0xFE, 0xFF, 0xFF, 0xFF])                    // BININT -2
        w.raw([0x4D, 0x34, 0x12])                                // BININT2 0x1234
        w.text("I", "123456789012")                              // INT
        w.text("I", "01")                                        // INT True (protocol 0 spelling)
        w.text("L", "-42L")                                      // LONG
        w.raw([0x8A, 0x02, 0x00, 0xFF])                          // LONG1 -256
        w.raw([0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]) // torch's legacy magic number
        w.raw([0x8B, 0x00, 0x00, 0x00, 0x00])                    // LONG4 0
        w.raw([0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0])              // BINFLOAT 1.5 (big-endian)
        w.text("F", "2.25")                                      // FLOAT
        w.op(0x88).op(0x89).none()                               // NEWTRUE NEWFALSE NONE
        w.tuple().stop()
        try run(w) { v, _ in
            guard let items = v.sequenceItems else { return XCTFail("not a tuple: \(v.kindName)") }
            let text = items.map { TorchGlobals.scalarText($0) }
            XCTAssertEqual(text, ["-2", "4660", "123456789012", "True", "-42", "-256", "119547037146038801333356", "0", "1.5", "2.25",
                                  "True", "False", "None"])
        }
    }

    func testStringsAndBytes() throws {
        let w = PickleWriter(protocol: 5)
        w.mark()
        w.str("é")                                               // BINUNICODE
        w.raw([0x8C, 0x02]).raw(Array("ab".utf8))                // SHORT_BINUNICODE
        w.raw([0x8D]).raw(w.le(UInt64(1))).raw([0x7A])          // BINUNICODE8 "z"
        w.text("V", "x\\u00e9y")                                 // UNICODE (raw-unicode-escape)
        w.text("S", "'a\\nb\\x41'")                              // STRING (quoted Python 2 literal)
        w.raw([0x54, 0x01, 0, 0, 0, 0x71])                       // BINSTRING "q"
        w.raw([0x55, 0x01, 0x72])                                // SHORT_BINSTRING "r"
        w.raw([0x42, 0x02, 0, 0, 0, 0x00, 0xFF])                 // BINBYTES
        w.raw([0x43, 0x01, 0x07])                                // SHORT_BINBYTES
        w.raw([0x8E]).raw(w.le(UInt64(1))).raw([0x08])          // BINBYTES8
        w.raw([0x96]).raw(w.le(UInt64(2))).raw([0x09, 0x0A])    // BYTEARRAY8
        w.tuple().stop()
        try run(w) { v, _ in
            let items = v.sequenceItems ?? []
            XCTAssertEqual(items.prefix(6).map { $0.stringValue ?? "?" }, ["é", "ab", "z", "xéy", "a\nbA", "q"])
            XCTAssertEqual(items[6].stringValue, "r")
            let bytes = items.dropFirst(7).map { v -> [UInt8] in if case .bytes(let b) = v { return b } else { return [] } }
            XCTAssertEqual(bytes, [[0x00, 0xFF], [0x07], [0x08], [0x09, 0x0A]])
        }
    }

    func testContainersAndMemoSharing() throws {
        let w = PickleWriter(protocol: 4)
        w.raw([0x95]).raw(w.le(UInt64(0)))                       // FRAME (length ignored, must fit)
        w.emptyDict().op(0x94)                                   // MEMOIZE -> 0
        w.str("list").emptyList().op(0x94)                       // list is memo 1
        w.raw([0x73])                                            // SETITEM d['list'] = L
        w.raw([0x68, 0x01])                                      // BINGET 1 (the same list)
        w.mark().int(1).int(2).op(0x65)                          // APPENDS: mutates the list already in the dict
        w.op(0x30)                                               // POP
        w.mark()
        w.str("t1").int(7).op(0x85)                              // TUPLE1
        w.str("t3").int(1).int(2).int(3).op(0x87)                // TUPLE3
        w.str("l").mark().int(4).op(0x32).op(0x6C)               // DUP, LIST -> [4, 4]
        w.str("s").op(0x8F).mark().int(5).op(0x90)               // EMPTY_SET, ADDITEMS
        w.str("fs").mark().int(6).op(0x91)                       // FROZENSET
        w.str("d").mark().str("k").int(8).op(0x64)               // DICT
        w.str("p").int(9).text("p", "77").op(0x30).text("g", "77") // PUT 77, POP, GET 77
        w.str("lp").int(10).raw([0x72]).raw(w.le(UInt32(70000))).op(0x30).raw([0x6A]).raw(w.le(UInt32(70000))) // LONG_BINPUT/GET
        w.str("pm").mark().int(1).int(2).op(0x31).none()         // POP_MARK discards, then None
        w.setItems().stop()
        let out = try flatten(w)
        XCTAssertEqual(out.metadata.map(\.name), ["list.0", "list.1", "t1.0", "t3.0", "t3.1", "t3.2", "l.0", "l.1", "s.0", "fs.0",
                                                  "d.k", "p", "lp", "pm"])
        XCTAssertEqual(out.metadata.map(\.value), [.int(1), .int(2), .int(7), .int(1), .int(2), .int(3), .int(4), .int(4), .int(5),
                                                   .int(6), .int(8), .int(9), .int(10), .none])
    }

    func testIntegerDictKeysAndNestingNames() throws {
        let w = PickleWriter()
        w.emptyDict().mark()
        w.str("optimizer").emptyDict().mark().str("state").emptyDict().mark()
        w.int(0).emptyDict().mark().str("momentum_buffer").int(3).setItems()
        w.setItems().setItems()
        w.str("extra").mark().int(1).mark().int(2).none().tuple().op(0x6C)
        w.setItems().stop()
        let out = try flatten(w)
        XCTAssertEqual(out.metadata.map(\.name), ["optimizer.state.0.momentum_buffer", "extra.0", "extra.1.0", "extra.1.1"])
    }

    // MARK: errors

    func testErrorsNameOpcodeAndOffset() {
        let cases: [(PickleWriter, String)] = [
            (PickleWriter().stop(), "byte 2: pickle opcode STOP: stack underflow"),
            (PickleWriter().raw([0x86]).stop(), "TUPLE2: stack underflow"),
            (PickleWriter().mark().op(0x85).stop(), "TUPLE1: stack underflow"),   // cannot pop below a MARK
            (PickleWriter().raw([0x68, 0xC8]).stop(), "byte 2: pickle opcode BINGET: memo index 200 was never stored"),
            (PickleWriter().text("g", "5").stop(), "GET: memo index 5 was never stored"),
            (PickleWriter().int(1).tuple().stop(), "byte 4: pickle opcode TUPLE: no MARK to pop to (MARK missing)"),
            (PickleWriter().raw([0x58, 0xFF, 0xFF, 0, 0, 0x61]), "truncated pickle: opcode BINUNICODE declares 65535 bytes"),
            (PickleWriter().raw([0x4A, 0x01]), "truncated pickle: opcode BININT needs 4 more bytes"),
            (PickleWriter().none(), "truncated pickle: ends at byte 3 without a STOP opcode"),
            (PickleWriter().raw([0x8B, 0xFF, 0xFF, 0xFF, 0xFF]), "LONG4: negative byte count -1"),
            (PickleWriter().raw([0xFF]), "byte 2: unknown pickle opcode 0xff"),
            (PickleWriter().raw([0x82, 0x01]).stop(), "unsupported pickle opcode 0x82 (EXT1)"),
            (PickleWriter().raw([0x97]).stop(), "unsupported pickle opcode 0x97 (NEXT_BUFFER)"),
            (PickleWriter(protocol: 6).none().stop(), "byte 0: pickle opcode PROTO: unsupported pickle protocol 6"),
            (PickleWriter().int(1).int(2).raw([0x61]).stop(), "APPEND: cannot append to int"),
            (PickleWriter().mark().int(1).op(0x64).stop(), "DICT: odd number of items"),
            (PickleWriter().none().raw([0x51]).stop(), "BINPERSID: a persistent id appears where none is expected"),
            (PickleWriter().int(1).int(2).raw([0x93]).stop(), "STACK_GLOBAL: expects two strings"),
        ]
        for (w, fragment) in cases {
            let text = errorText(w)
            XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in '\(text)'")
        }
    }

    func testStackAndMemoCaps() {
        var limits = PickleLimits()
        limits.maxStack = 100
        limits.maxMemo = 10
        limits.maxValues = 50
        func failure(_ w: PickleWriter) -> String { errorText(w, limits: limits) }
        XCTAssertTrue(failure(PickleWriter().none().raw([UInt8](repeating: 0x32, count: 200)).stop()).contains("stack holds more than 100 values"))
        XCTAssertTrue(failure(PickleWriter(protocol: 4).none().raw([UInt8](repeating: 0x94, count: 20)).stop()).contains("memo holds more than 10 entries"))
        XCTAssertTrue(failure(PickleWriter().emptyList().mark().raw([UInt8](repeating: 0x4E, count: 60)).op(0x65).stop())
            .contains("more than 50 containers and container items"))
        XCTAssertTrue(failure(PickleWriter().raw(Array(repeating: [0x5D, 0x30], count: 60).flatMap { $0 }).none().stop())
            .contains("more than 50 containers"))
    }

    // MARK: depth, cycles, teardown

    func testDeeplyNestedListsAreAnErrorNotACrash() {
        // 200 000 nested lists: EMPTY_LIST × n, then APPEND × (n-1). The machine is iterative and the flattener
        // caps depth; tearing the value down must not recurse either.
        let n = 200_000
        let w = PickleWriter().raw([UInt8](repeating: 0x5D, count: n)).raw([UInt8](repeating: 0x61, count: n - 1)).stop()
        XCTAssertTrue(errorTextFlatten(w).contains("nested deeper than 1000 levels"))
        let marks = PickleWriter().raw([UInt8](repeating: 0x28, count: n)).raw([UInt8](repeating: 0x74, count: n)).stop()
        XCTAssertTrue(errorTextFlatten(marks).contains("nested deeper than 1000 levels"))
    }

    func testSelfContainingListIsAnError() {
        let w = PickleWriter().emptyList().raw([0x71, 0x00, 0x68, 0x00, 0x61]).stop()   // L = []; L.append(L)
        XCTAssertTrue(errorTextFlatten(w).contains("contains itself"))
    }

    func testModeratelyDeepNestingIsFine() throws {
        let n = 900
        let w = PickleWriter().raw([UInt8](repeating: 0x5D, count: n)).int(5).raw([UInt8](repeating: 0x61, count: n)).stop()
        let out = try flatten(w)
        XCTAssertEqual(out.metadata.count, 1)
        XCTAssertEqual(out.metadata.first?.name, Array(repeating: "0", count: n).joined(separator: "."))
    }

    func errorTextFlatten(_ w: PickleWriter) -> String {
        do { _ = try flatten(w); return "no error" } catch { return "\(error)" }
    }

    // MARK: globals

    func testCodeExecutionPayloadIsRefusedAndNeverRun() {
        let w = PickleWriter()
        w.global("posix", "system").str("touch /tmp/pwned-by-pickle-test").op(0x85).reduce().stop()
        let text = errorTextFlatten(w)
        XCTAssertTrue(text.contains("refusing pickle: it calls non-allowlisted global posix.system (os.system) and holds no tensors"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/pwned-by-pickle-test"))

        let eval = PickleWriter(protocol: 4)
        eval.str("builtins").str("eval").raw([0x93]).str("1+1").op(0x85).reduce().stop()
        XCTAssertTrue(errorTextFlatten(eval).contains("non-allowlisted global builtins.eval"))

        let ref = PickleWriter()
        ref.emptyDict().str("f").global("os", "system").raw([0x73]).stop()      // referenced, not called
        XCTAssertTrue(errorTextFlatten(ref).contains("references non-allowlisted global os.system"))
    }

    func testUnknownGlobalsAreInertWhenTensorsArePresent() throws {
        // {'w': tensor, 'cfg': some.Config(...) with BUILD state}: the object becomes metadata, nothing is called.
        let w = PickleWriter()
        w.emptyDict().mark()
        w.str("w").tensor(key: "0", numel: 2, offset: 0, size: [2], stride: [1])
        w.str("cfg").global("some.module", "Config").emptyTuple().op(0x81)       // NEWOBJ
        w.emptyDict().mark().str("lr").int(3).setItems().op(0x62)                 // BUILD
        w.str("call").global("os", "system").str("x").op(0x85).reduce()
        w.setItems().stop()
        let out = try flatten(w, storages: ["0": floats([1, 2])])
        XCTAssertEqual(out.tensors.map(\.name), ["w"])
        XCTAssertEqual(out.metadata.map(\.name), ["cfg.lr", "call.0"])
    }

    // MARK: tensors

    func testTransposedSliceIsMaterialisedContiguously() throws {
        // storage 0..11 as a 3×4 matrix; the tensor is base[:, 1:3].t(): shape [2, 3], stride [1, 4], offset 1.
        let w = PickleWriter()
        w.emptyDict().mark().str("v").tensor(key: "0", numel: 12, offset: 1, size: [2, 3], stride: [1, 4]).setItems().stop()
        let out = try flatten(w, storages: ["0": floats((0..<12).map(Float.init))])
        let t = try XCTUnwrap(out.tensors.first)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.location, "0 +4")
        XCTAssertEqual(try t.load().floats(), [1, 5, 9, 2, 6, 10])
    }

    func testExpandScalarEmptyAndBigEndian() throws {
        let w = PickleWriter()
        w.emptyDict().mark()
        w.str("expand").tensor(key: "0", numel: 2, offset: 0, size: [3, 2], stride: [0, 1])
        w.str("scalar").tensor(key: "0", numel: 2, offset: 1, size: [], stride: [])
        w.str("empty").tensor(key: "0", numel: 2, offset: 0, size: [0, 5], stride: [5, 1])
        w.setItems().stop()
        let be: [UInt8] = [0x3F, 0x80, 0, 0, 0x40, 0, 0, 0]                       // 1.0, 2.0 big-endian
        let out = try flatten(w, storages: ["0": be], bigEndian: true)
        XCTAssertEqual(try out.tensors[0].load().floats(), [1, 2, 1, 2, 1, 2])
        XCTAssertEqual(try out.tensors[1].load().floats(), [2])
        XCTAssertEqual(out.tensors[1].shape, [])
        XCTAssertEqual(try out.tensors[2].load().bytes.count, 0)
    }

    func testViewErrorsNameTheKey() {
        func error(size: [Int32], stride: [Int32], offset: Int32 = 0, storage: String = "FloatStorage") -> String {
            let w = PickleWriter()
            w.emptyDict().mark().str("w").tensor(storage: storage, key: "0", numel: 12, offset: offset, size: size, stride: stride)
            w.setItems().stop()
            do { _ = try flatten(w, storages: ["0": [UInt8](repeating: 0, count: 48)]); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(size: [4, 4], stride: [4, 1]).contains("key 'w': view exceeds storage"))
        XCTAssertTrue(error(size: [3], stride: [1], offset: 10).contains("view exceeds storage"))
        XCTAssertTrue(error(size: [-1, 4], stride: [4, 1]).contains("negative dimension"))
        XCTAssertTrue(error(size: [2], stride: [-1]).contains("negative stride"))
        XCTAssertTrue(error(size: [2, 2], stride: [1]).contains("2 sizes but 1 strides"))
        // A storage type this reader cannot represent is not an error: the tensor is listed by name.
        let w = PickleWriter()
        w.emptyDict().mark().str("q").tensor(storage: "QInt8Storage", key: "0", numel: 12, offset: 0, size: [2], stride: [1])
        w.str("f").tensor(key: "1", numel: 1, offset: 0, size: [], stride: []).setItems().stop()
        let out = try? flatten(w, storages: ["0": [UInt8](repeating: 0, count: 12), "1": [0, 0, 0x80, 0x3F]])
        XCTAssertEqual(out?.unsupported, [UnsupportedTensor(name: "q", what: "a tensor stored as torch.QInt8Storage (qint8)")])
        XCTAssertEqual(out?.tensors.map(\.name), ["f"])
        XCTAssertTrue(error(size: [0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF], stride: [0, 0, 0]).contains("overflows"))
        XCTAssertTrue(error(size: [65536, 65536], stride: [0, 0]).contains("expands"))   // 16 GiB from 4 bytes
    }

    func testModuleStateFollowsStateDictRules() throws {
        // A pickled nn.Module: NEWOBJ of an unknown class + BUILD with _parameters/_buffers/_modules; the child
        // module has a None parameter and a non-persistent buffer, both skipped.
        func module(_ w: PickleWriter, params: [(String, Int32?)], buffers: [(String, Int32)], nonPersistent: [String],
                    children: [(String, (PickleWriter) -> Void)]) {
            w.global("torch.nn.modules.linear", "Linear").emptyTuple().op(0x81)
            w.emptyDict().mark()
            w.str("training").op(0x88)
            w.str("_parameters").emptyDict().mark()
            for (n, off) in params {
                w.str(n)
                if let off { w.tensor(key: "0", numel: 8, offset: off, size: [1], stride: [1]) } else { w.none() }
            }
            w.setItems()
            w.str("_buffers").emptyDict().mark()
            for (n, off) in buffers { w.str(n).tensor(key: "0", numel: 8, offset: off, size: [1], stride: [1]) }
            w.setItems()
            w.str("_non_persistent_buffers_set").global("builtins", "set").mark()
            for n in nonPersistent { w.str(n) }
            w.op(0x6C).op(0x85).reduce()
            w.str("_modules").emptyDict().mark()
            for (n, body) in children { w.str(n); body(w) }
            w.setItems()
            w.setItems().op(0x62)
        }
        let w = PickleWriter()
        module(w, params: [("weight", 0)], buffers: [], nonPersistent: [], children: [
            ("layer1", { w in
                module(w, params: [("weight", 1), ("bias", nil)], buffers: [("running_mean", 2), ("cache", 3)],
                       nonPersistent: ["cache"], children: [])
            }),
        ])
        w.stop()
        let out = try flatten(w, storages: ["0": floats((0..<8).map(Float.init))])
        XCTAssertEqual(out.tensors.map(\.name), ["weight", "layer1.weight", "layer1.running_mean"])
        XCTAssertEqual(try out.tensors[2].load().floats(), [2])
        XCTAssertTrue(out.metadata.isEmpty)
    }

    func testStridedCopyAndByteSwapHelpers() {
        let src: [UInt8] = Array(0..<24)
        // int16 elements 0..11 viewed as [3, 2] with strides [2, 6] (a transpose of [2, 6]→ pick columns).
        let out = StridedCopy.gather(src, elementSize: 2, shape: [3, 2], strides: [2, 6], count: 6)
        XCTAssertEqual(out, [0, 1, 12, 13, 4, 5, 16, 17, 8, 9, 20, 21])
        var swap: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        StridedCopy.byteSwap(&swap, elementSize: 4)
        XCTAssertEqual(swap, [4, 3, 2, 1, 8, 7, 6, 5])
    }

    // MARK: legacy file layout

    /// magic, protocol version, sys_info, object pickle, key list, then records.
    func legacyFile(_ object: PickleWriter, keys: [String], records: [(count: UInt64, bytes: [UInt8])]) throws -> String {
        var b: [UInt8] = []
        b += PickleWriter().raw([0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]).stop().bytes
        b += PickleWriter().raw([0x4D, 0xE9, 0x03]).stop().bytes                        // 1001
        b += PickleWriter().emptyDict().mark().str("little_endian").op(0x88).setItems().stop().bytes
        b += object.bytes
        let list = PickleWriter().emptyList().mark()
        keys.forEach { list.str($0) }
        b += list.op(0x65).stop().bytes
        for r in records { b += withUnsafeBytes(of: r.count.littleEndian) { Array($0) } + r.bytes }
        let path = NSTemporaryDirectory() + "pickle-legacy-\(UUID().uuidString).pth"
        try Data(b).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testLegacyReaderWithStorageView() throws {
        // Two tensors: one on root storage "A" (4 floats), one on a legacy storage view of A starting at element 2.
        let obj = PickleWriter()
        obj.emptyDict().mark()
        obj.str("a").tensor(key: "A", numel: 4, offset: 0, size: [4], stride: [1], legacyView: .some(nil))
        obj.str("v").tensor(key: "A", numel: 4, offset: 1, size: [1], stride: [1], legacyView: .some(("V", 2, 2)))
        obj.setItems().stop()
        let path = try legacyFile(obj, keys: ["A"], records: [(4, floats([10, 11, 12, 13]))])
        let sd = try PyTorchLegacyReader.read(path: path)
        XCTAssertEqual(sd.format, .pytorchLegacy)
        XCTAssertEqual(sd.names, ["a", "v"])
        XCTAssertEqual(try sd.tensors[0].load().floats(), [10, 11, 12, 13])
        XCTAssertEqual(try sd.tensors[1].load().floats(), [13])
    }

    func testLegacyRecordErrors() throws {
        let obj = PickleWriter()
        obj.emptyDict().mark().str("a").tensor(key: "A", numel: 4, offset: 0, size: [4], stride: [1], legacyView: .some(nil))
        obj.setItems().stop()
        func error(_ keys: [String], _ records: [(count: UInt64, bytes: [UInt8])]) throws -> String {
            do { _ = try PyTorchLegacyReader.read(path: try legacyFile(obj, keys: keys, records: records)); return "no error" }
            catch { return "\(error)" }
        }
        XCTAssertTrue(try error(["A"], [(2, floats([1, 2]))]).contains("storage 'A' declares 4 elements of 4 bytes but its record"))
        XCTAssertTrue(try error(["A"], [(4, floats([1]))]).contains("file truncated: storage 'A'"))
        XCTAssertTrue(try error(["A"], []).contains("lacks its 8-byte element count"))
        XCTAssertTrue(try error([], []).contains("storage 'A' has no data record"))
        XCTAssertTrue(try error(["A", "B"], [(4, floats([1, 2, 3, 4]))]).contains("names 'B' but the object pickle never uses it"))
    }
}
