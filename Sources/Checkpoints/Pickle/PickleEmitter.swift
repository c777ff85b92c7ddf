/// Emits pickle opcodes (protocol 2, plus BINBYTES) for the few shapes of data this project writes: torch.save
/// payloads and DCP `.metadata` files. Values are written as literals; nothing is memoised.
package struct PickleEmitter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package mutating func raw(_ b: [UInt8]) { bytes += b }
    package mutating func proto() { raw([0x80, 2]) }
    package mutating func stop() { raw([0x2E]) }
    package mutating func none() { raw([0x4E]) }
    package mutating func bool(_ v: Bool) { raw([v ? 0x88 : 0x89]) }
    package mutating func global(_ module: String, _ name: String) { raw([0x63] + Array("\(module)\n\(name)\n".utf8)) }
    package mutating func string(_ s: String) {
        let u = Array(s.utf8)
        raw([0x58]); withUnsafeBytes(of: UInt32(u.count).littleEndian) { raw(Array($0)) }; raw(u)
    }
    package mutating func binBytes(_ b: [UInt8]) {
        raw([0x42]); withUnsafeBytes(of: UInt32(b.count).littleEndian) { raw(Array($0)) }; raw(b)
    }
    /// LONG1 with 8 bytes: any Int64.
    package mutating func int(_ v: Int) {
        raw([0x8A, 8]); withUnsafeBytes(of: Int64(v).littleEndian) { raw(Array($0)) }
    }
    /// An integer too large for Int64, from its decimal digits (protocol 0 LONG).
    package mutating func bigInt(_ decimal: String) { raw([0x4C] + Array((decimal + "L\n").utf8)) }
    package mutating func float(_ v: Double) {
        raw([0x47]); withUnsafeBytes(of: v.bitPattern.bigEndian) { raw(Array($0)) }
    }
    package mutating func tuple(_ body: (inout PickleEmitter) -> Void) { raw([0x28]); body(&self); raw([0x74]) }
    package mutating func list(_ body: (inout PickleEmitter) -> Void) { raw([0x5D, 0x28]); body(&self); raw([0x65]) }
    package mutating func dict(_ body: (inout PickleEmitter) -> Void) { raw([0x7D, 0x28]); body(&self); raw([0x75]) }
    /// `callable(*args)`: the callable is written by `callable`, the arguments by `args` (inside a tuple).
    package mutating func call(_ module: String, _ name: String, _ args: (inout PickleEmitter) -> Void) {
        global(module, name); tuple(args); raw([0x52])
    }
    package mutating func size(_ dims: [Int]) {
        call("torch", "Size") { p in p.tuple { p in for d in dims { p.int(d) } } }
    }
    /// `cls.__new__(cls)` (NEWOBJ) with no state.
    package mutating func object(_ module: String, _ name: String) {
        global(module, name); raw([0x29, 0x81])
    }
    /// `cls.__new__(cls)` (NEWOBJ), then BUILD with the state `state` writes.
    package mutating func object(_ module: String, _ name: String, _ state: (inout PickleEmitter) -> Void) {
        global(module, name); raw([0x29, 0x81])
        state(&self); raw([0x62])
    }
}
