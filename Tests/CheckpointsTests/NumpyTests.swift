@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

final class NumpyTests: TemporaryDirectoryTestCase {
    /// A `.npy` stream: magic, version, header length, the dict literal padded to 64 bytes, then `data`.
    static func npy(_ dict: String, _ data: [UInt8], version: UInt8 = 1) -> [UInt8] {
        let prefix = version == 1 ? 10 : 12
        var header = Array(dict.utf8)
        let total = prefix + header.count + 1
        header += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64) + [0x0A]
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let n = header.count
        out += version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
        return out + header + data
    }

    static func dict(_ descr: String, _ shape: String, fortran: Bool = false) -> String {
        "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
    }

    static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    func readNPY(_ bytes: [UInt8]) throws -> StateDict {
        try NumpyReader.readNPY(path: write(bytes, to: "a.npy"))
    }

    func testEveryDTypeInBothByteOrders() throws {
        let cases: [(String, DType, [UInt8])] = [
            ("f8", .float64, Self.bytes([1.5, -2.25] as [Double])),
            ("f4", .float32, Self.bytes([1.5, -2.25] as [Float])),
            ("f2", .float16, Self.bytes([Float16(1.5).bitPattern, Float16(-2.25).bitPattern])),
            ("i8", .int64, Self.bytes([-1, 1 << 40] as [Int64])),
            ("i4", .int32, Self.bytes([-1, 1 << 20] as [Int32])),
            ("i2", .int16, Self.bytes([-1, 300] as [Int16])),
        ]
        for (code, dtype, little) in cases {
            for order in ["<", ">"] {
                var data = little
                if order == ">" { NPYHeader.byteSwap(&data, itemSize: dtype.byteSize) }
                let sd = try readNPY(Self.npy(Self.dict(order + code, "(2,)"), data))
                XCTAssertEqual(sd.format, .npy)
                XCTAssertEqual(sd.names, ["array"])
                XCTAssertEqual(sd.tensors[0].dtype, dtype, order + code)
                XCTAssertEqual(try sd.tensors[0].load().bytes, little, order + code)
                XCTAssertEqual(sd.tensors[0].span != nil, order == "<", "\(order + code): only little-endian data is verbatim")
            }
        }
        for (descr, dtype) in [("|i1", DType.int8), ("|u1", .uint8), ("|b1", .bool)] {
            let sd = try readNPY(Self.npy(Self.dict(descr, "(3,)"), [0, 1, 1]))
            XCTAssertEqual(sd.tensors[0].dtype, dtype)
            XCTAssertEqual(try sd.tensors[0].load().bytes, [0, 1, 1])
        }
    }

    func testUnsignedAndComplexKeepTheirDTypes() throws {
        let u2 = try readNPY(Self.npy(Self.dict("<u2", "(2,)"), Self.bytes([1, 65535] as [UInt16])))
        XCTAssertEqual(u2.tensors[0].dtype, .uint16)
        XCTAssertEqual(try u2.tensors[0].load().bytes, Self.bytes([1, 65535] as [UInt16]))
        let u4 = try readNPY(Self.npy(Self.dict(">u4", "(1,)"), [0xFF, 0xFF, 0xFF, 0xFE]))
        XCTAssertEqual(u4.tensors[0].dtype, .uint32)
        XCTAssertEqual(try u4.tensors[0].load().bytes, Self.bytes([0xFFFF_FFFE] as [UInt32]))
        let u8 = try readNPY(Self.npy(Self.dict("<u8", "(2,)"), Self.bytes([7, UInt64.max] as [UInt64])))
        XCTAssertEqual(u8.tensors[0].dtype, .uint64)
        XCTAssertEqual(try u8.tensors[0].load().bytes, Self.bytes([7, UInt64.max] as [UInt64]))
        // Big-endian complex: each part swapped on its own.
        let c8 = try readNPY(Self.npy(Self.dict(">c8", "(1,)"), [0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0]))
        XCTAssertEqual(c8.tensors[0].dtype, .complex64)
        XCTAssertEqual(try c8.tensors[0].load().bytes, Self.bytes([1, -2] as [Float]))
    }

    func testFortranOrderIsTransposedToCOrder() throws {
        // C-order values 0..<24 of shape (2, 3, 4), stored column-major.
        let shape = [2, 3, 4]
        var fortran = [Float](repeating: 0, count: 24)
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            fortran[i + 2 * j + 6 * k] = Float(i * 12 + j * 4 + k)
        } } }
        let sd = try readNPY(Self.npy(Self.dict("<f4", "(2, 3, 4)", fortran: true), Self.bytes(fortran)))
        let t = try sd.tensors[0].load()
        XCTAssertEqual(t.shape, shape)
        XCTAssertEqual(t.floats(), (0..<24).map(Float.init))
        XCTAssertNil(sd.tensors[0].span, "fortran data is not verbatim")
        // A 1-D Fortran array is the same as C order.
        let v = try readNPY(Self.npy(Self.dict(">i2", "(3,)", fortran: true), [0, 1, 0, 2, 0, 3]))
        XCTAssertEqual(try v.tensors[0].load().bytes, Self.bytes([1, 2, 3] as [Int16]))
    }

    func testScalarEmptyAndNewerHeaderVersions() throws {
        let scalar = try readNPY(Self.npy(Self.dict("<i8", "()"), Self.bytes([42] as [Int64]), version: 2))
        XCTAssertEqual(scalar.tensors[0].shape, [])
        XCTAssertEqual(try scalar.tensors[0].load().bytes, Self.bytes([42] as [Int64]))
        let empty = try readNPY(Self.npy(Self.dict("<f4", "(0, 5)", fortran: true), [], version: 3))
        XCTAssertEqual(empty.tensors[0].shape, [0, 5])
        XCTAssertEqual(try empty.tensors[0].load().bytes, [])
        // Python 2 era headers: long literals and double quotes.
        let py2 = try readNPY(Self.npy(#"{"descr": "<f4", "fortran_order": False, "shape": (1L, 2L)}"#, Self.bytes([1, 2] as [Float])))
        XCTAssertEqual(py2.tensors[0].shape, [1, 2])
    }

    func testStringArraysBecomeMetadata() throws {
        let s = try readNPY(Self.npy(Self.dict("|S3", "(2,)"), Array("abcx\0\0".utf8)))
        XCTAssertTrue(s.tensors.isEmpty)
        XCTAssertEqual(s.metadata, [MetadataEntry(name: "array.0", value: .string("abc")), MetadataEntry(name: "array.1", value: .string("x"))])
        var utf32: [UInt8] = []
        for ch in "dö" { for u in String(ch).unicodeScalars { utf32 += Self.bytes([u.value]) } }
        let u = try readNPY(Self.npy(Self.dict("<U2", "()"), utf32))
        XCTAssertEqual(u.metadata, [MetadataEntry(name: "array", value: .string("dö"))])
    }

    /// (what, file bytes, expected message fragment).
    func testMalformedFilesGiveOneClearError() throws {
        let f4 = Self.bytes([1, 2] as [Float])
        let rows: [(String, [UInt8], String)] = [
            ("too short", [0x93, 0x4E], "too short"),
            ("bad version", [0x93] + Array("NUMPY".utf8) + [9, 0, 0, 0], "unsupported .npy format version 9.0"),
            ("header past the end", [0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0x7F] + Array("{'descr'".utf8), "runs past the end"),
            ("header is not a literal", Self.npy("{'descr': <f4}", f4), "not a Python dict literal"),
            ("header is a list", Self.npy("['descr']", f4), "not a dict"),
            ("missing shape", Self.npy("{'descr': '<f4', 'fortran_order': False}", f4), "has no 'shape'"),
            ("negative dimension", Self.npy(Self.dict("<f4", "(-2,)"), f4), "negative"),
            ("overflowing shape", Self.npy(Self.dict("<f4", "(4611686018427387904, 4611686018427387904)"), f4), "overflows"),
            ("huge integer", Self.npy(Self.dict("<f4", "(99999999999999999999999,)"), f4), "out of range"),
            ("object array that is no pickle", Self.npy(Self.dict("|O", "(2,)"), f4), "pickle opcode"),
            ("complex256", Self.npy(Self.dict("<c32", "(1,)"), [UInt8](repeating: 0, count: 32)), "complex"),
            ("structured", Self.npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f4), "structured dtype"),
            ("bfloat16 as void", Self.npy(Self.dict("|V2", "(2,)"), f4), "raw void"),
            ("truncated data", Self.npy(Self.dict("<f4", "(100,)"), f4), "truncated"),
            ("extra data", Self.npy(Self.dict("<f4", "(1,)"), f4), "needs 4"),
        ]
        for (what, bytes, fragment) in rows {
            let p = try write(bytes, to: "bad.npy")
            guard let e = checkpointError({ _ = try NumpyReader.readNPY(path: p) }) else { continue }
            XCTAssertTrue(e.message.contains(fragment), "\(what): '\(e.message)' lacks '\(fragment)'")
            XCTAssertEqual(e.file, p, what)
            XCTAssertNotNil(e.offset, "\(what): error names a byte offset")
            XCTAssertFalse(e.description.contains("\n"), what)
        }
    }

    // MARK: npz

    func testNPZMembersBecomeDottedNames() throws {
        let members: [(String, [UInt8])] = [
            ("Transformer/encoderblock_0/LayerNorm_0/scale.npy", Self.npy(Self.dict("<f4", "(2,)"), Self.bytes([1, 2] as [Float]))),
            ("head/kernel.npy", Self.npy(Self.dict(">f8", "(1, 2)", fortran: true), [0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0])),
            ("classes.npy", Self.npy(Self.dict("|S1", "(2,)"), Array("ab".utf8))),
        ]
        let p = try write(StoredZip.make(members), to: "w.npz")
        XCTAssertEqual(try Checkpoint.sniff(p), .npz)
        let sd = try Checkpoint.open(p)
        XCTAssertEqual(sd.names, ["Transformer.encoderblock_0.LayerNorm_0.scale", "head.kernel"])
        XCTAssertEqual(sd.tensors[0].location, "Transformer/encoderblock_0/LayerNorm_0/scale.npy +128")
        XCTAssertEqual(try sd.tensors[0].load().floats(), [1, 2])
        XCTAssertNotNil(sd.tensors[0].span, "stored little-endian member is verbatim")
        XCTAssertEqual(try sd.tensors[1].load().bytes, Self.bytes([1, 2] as [Double]))
        XCTAssertEqual(sd.metadata.map(\.name), ["classes.0", "classes.1"])
    }

    func testNPZErrorsNameTheMember() throws {
        let p = try write(StoredZip.make([("ok.npy", Self.npy(Self.dict("<f4", "(1,)"), Self.bytes([1] as [Float]))),
                                          ("bad.npy", Self.npy(Self.dict("<f4", "(9,)"), Self.bytes([1] as [Float])))]), to: "b.npz")
        let e = checkpointError { _ = try NumpyReader.readNPZ(path: p) }
        XCTAssertEqual(e?.member, "bad.npy")
        XCTAssertEqual(e?.key, "bad")
        XCTAssertTrue(e?.message.contains("truncated") ?? false)
        let q = try write(StoredZip.make([("a/b.npy", [0x93, 0x4E, 0x55])]), to: "c.npz")
        let e2 = checkpointError { _ = try NumpyReader.readNPZ(path: q) }
        XCTAssertEqual(e2?.member, "a/b.npy")
        let one = Self.npy(Self.dict("<f4", "(1,)"), Self.bytes([1] as [Float]))
        let r = try write(StoredZip.make([("a.b.npy", one), ("a/b.npy", one)]), to: "d.npz")
        XCTAssertTrue(checkpointError { _ = try NumpyReader.readNPZ(path: r) }?.message.contains("same name") ?? false)
    }

    func testLiteralParser() throws {
        let v = try PyLiteral.parse(" {'a': (1, -2,), \"b\": [True, None], 'c': {}} ")
        XCTAssertEqual(v.description, "{'a': (1, -2), 'b': [True, None], 'c': {}}")
        XCTAssertThrowsError(try PyLiteral.parse(String(repeating: "(", count: 10_000)))
        XCTAssertThrowsError(try PyLiteral.parse("__import__('os')"))
    }
}

/// A minimal zip writer (stored members only) for tests.
enum StoredZip {
    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    static func make(_ members: [(String, [UInt8])]) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        var out: [UInt8] = []
        var central: [UInt8] = []
        for (name, data) in members {
            let n = Array(name.utf8)
            let crc = crc32(data)
            let offset = UInt32(out.count)
            let common = u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc) + u32(UInt32(data.count)) + u32(UInt32(data.count)) + u16(n.count) + u16(0)
            out += u32(0x0403_4B50) + common + n + data
            central += u32(0x0201_4B50) + u16(20) + common + u16(0) + u16(0) + u16(0) + u32(0) + u32(offset) + n
        }
        let cdOffset = UInt32(out.count)
        out += central
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(members.count) + u16(members.count) + u32(UInt32(central.count)) + u32(cdOffset) + u16(0)
        return out
    }
}
