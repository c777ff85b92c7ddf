@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Temporary directory per test case, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-\(type(of: self))-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// The error `body` throws, as a CheckpointError (fails the test if it succeeds or throws something else).
    func checkpointError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        do {
            try body()
            XCTFail("expected an error", file: file, line: line)
        } catch let e as CheckpointError {
            return e
        } catch {
            XCTFail("expected a CheckpointError, got \(error)", file: file, line: line)
        }
        return nil
    }
}

/// One tensor of every dtype (plus a scalar and an empty one), with recognisable bytes.
enum SampleTensors {
    /// The dtypes `holds` accepts (an output format's `holds`: safetensors has no complex128, HDF5 no packed types).
    static func all(holds: (DType) -> Bool = { _ in true }) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (i, dt) in DType.allCases.enumerated() where holds(dt) {
            let shape = dt.isPacked ? [2, 4] : [2, 3]
            let n = ShapeMath.byteCount(shape, dt)!
            var bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 7 + i * 13 + 1) }
            if dt == .bool { bytes = (0..<n).map { UInt8($0 % 2) } }
            if dt.isFloat8 {
                // Exact in every float8 format (e8m0fnu holds only powers of two) and in float16/bfloat16.
                bytes = Tensor(shape: shape, floats: [0.5, 1, 2, 4, 0.25, 8]).converted(to: dt).bytes
            } else if dt.isFloatingPoint {
                // Finite values only (no NaN payloads to worry about in casts).
                bytes = Tensor(shape: shape, floats: (0..<6).map { Float($0) * 0.75 - Float(i) }).converted(to: dt).bytes
            }
            out.append(("group.\(dt.rawValue)", Tensor(dtype: dt, shape: shape, bytes: bytes)))
        }
        out.append(("scalar", Tensor(shape: [], floats: [3.5])))
        out.append(("empty", Tensor(dtype: .int64, shape: [0, 4], bytes: [])))
        return out
    }

    static func stateDict(_ tensors: [(String, Tensor)]) -> StateDict {
        StateDict(format: .safetensors, file: "", tensors: tensors.map { TensorEntry(name: $0.0, tensor: $0.1) })
    }
}

final class SafetensorsTests: TemporaryDirectoryTestCase {
    /// A safetensors file from a header string and a data area.
    func safetensors(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }

    func writeSafetensors(_ sd: StateDict, _ name: String, dtype: DType? = nil, metadata: [String: String] = [:]) throws -> String {
        let p = path(name)
        let out = try AtomicOutput(destination: p)
        try SafetensorsWriter.write(sd, to: out, dtype: dtype, metadata: metadata)
        try out.commit()
        return p
    }

    func testRoundTripOfEveryDType() throws {
        let tensors = SampleTensors.all(holds: SafetensorsWriter.holds)
        var progress: [Int] = []
        let p = path("all.safetensors")
        let out = try AtomicOutput(destination: p)
        try SafetensorsWriter.write(SampleTensors.stateDict(tensors), to: out, dtype: nil,
                                    metadata: ["format": "pt", "quote\"and\\slash": "line\nbreak ü"]) { progress.append($0) }
        try out.commit()

        let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: p)))
        let n = raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(n % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(raw[8], UInt8(ascii: "{"))
        XCTAssertEqual(progress.count, tensors.count)
        XCTAssertEqual(progress.last, tensors.reduce(0) { $0 + $1.1.byteCount })

        let sd = try Checkpoint.open(p)
        XCTAssertEqual(sd.format, .safetensors)
        XCTAssertEqual(sd.names, tensors.map(\.0), "writer keeps state-dict order, reader returns file order")
        for (entry, (name, t)) in zip(sd.tensors, tensors) {
            XCTAssertEqual(entry.dtype, t.dtype, name)
            XCTAssertEqual(entry.shape, t.shape, name)
            XCTAssertEqual(try entry.load().bytes, t.bytes, name)
        }
        XCTAssertEqual(sd.metadata, [MetadataEntry(name: "format", value: .string("pt")),
                                     MetadataEntry(name: "quote\"and\\slash", value: .string("line\nbreak ü"))])
    }

    func testCastAppliesToFloatingTensorsOnly() throws {
        let p = try writeSafetensors(SampleTensors.stateDict(SampleTensors.all(holds: SafetensorsWriter.holds)), "cast.safetensors", dtype: .float16)
        let sd = try SafetensorsReader.read(path: p)
        for (entry, (_, t)) in zip(sd.tensors, SampleTensors.all(holds: SafetensorsWriter.holds)) {
            if t.dtype.isFloatingPoint {
                XCTAssertEqual(entry.dtype, .float16)
                XCTAssertEqual(try entry.load().floats(), t.floats(), "values chosen to be exact in float16")
            } else {
                XCTAssertEqual(entry.dtype, t.dtype)
                XCTAssertEqual(try entry.load().bytes, t.bytes)
            }
        }
    }

    func testWriterRejectsDuplicateNames() throws {
        let t = Tensor(shape: [1], floats: [1])
        let sd = SampleTensors.stateDict([("w", t), ("w", t)])
        let e = checkpointError { _ = try self.writeSafetensors(sd, "dup.safetensors") }
        XCTAssertEqual(e?.key, "w")
        XCTAssertTrue(e?.message.contains("duplicate") ?? false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("dup.safetensors")), "nothing left at the destination")
    }

    func testTensorsComeInFileOrderWhateverTheHeaderOrder() throws {
        let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#
        let p = try write(safetensors(header, data: [1, 2, 3, 4, 0, 0, 0x80, 0x3F]), to: "order.safetensors")
        let sd = try SafetensorsReader.read(path: p)
        XCTAssertEqual(sd.names, ["a", "b"])
        XCTAssertEqual(try sd.tensors[1].load().floats(), [1])
        XCTAssertEqual(sd.tensors[0].location, "byte \(8 + header.utf8.count)")
        XCTAssertEqual(sd.metadata, [MetadataEntry(name: "k", value: .string("v"))])
    }

    func testEmptyAndScalarTensorsAndEmptyHeader() throws {
        let header = #"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#
        let p = try write(safetensors(header, data: [7, 0, 0, 0, 0, 0, 0, 0]), to: "es.safetensors")
        let sd = try SafetensorsReader.read(path: p)
        XCTAssertEqual(sd.names, ["e", "s"])
        XCTAssertEqual(try sd.tensors[0].load().bytes, [])
        XCTAssertEqual(try sd.tensors[1].load().shape, [])
        let empty = try write(safetensors("{}  "), to: "none.safetensors")
        XCTAssertEqual(try SafetensorsReader.read(path: empty).tensors.count, 0)
    }

    /// Hostile and malformed headers: (what, file bytes, expected message fragment, expected key).
    func testMalformedHeadersGiveOneClearError() throws {
        let f32 = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let eight = [UInt8](repeating: 0, count: 8)
        let rows: [(String, [UInt8], String, String?)] = [
            ("file shorter than the length prefix", [1, 2, 3], "too short", nil),
            ("2^62-byte header", safetensors("{}", declaredLength: 1 << 62), "exceeds the 100000000-byte limit", nil),
            ("header longer than the file", safetensors("{}", declaredLength: 1000), "runs past the end of the file", nil),
            ("invalid JSON", safetensors(#"{"a": [1, 2"#), "invalid JSON", nil),
            ("trailing garbage in header", safetensors(#"{} x"#), "unexpected data after the JSON document", nil),
            ("header is an array", safetensors("[1, 2]"), "expected a JSON object", nil),
            ("duplicate key", safetensors(#"{"a":\#(f32),"a":\#(f32)}"#, data: eight), "duplicate key 'a'", nil),
            ("unknown dtype", safetensors(#"{"a":{"dtype":"F8_E3M4","shape":[8],"data_offsets":[0,8]}}"#, data: eight), "unsupported dtype 'F8_E3M4'", "a"),
            ("packed, not whole bytes", safetensors(#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]), "do not fill whole bytes", "a"),
            ("negative dimension", safetensors(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight), "negative dimension", "a"),
            ("overflowing shape", safetensors(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: eight), "overflows", "a"),
            ("dimension beyond 64 bits", safetensors(#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#, data: eight), "fits in 64 bits", "a"),
            ("missing data_offsets", safetensors(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight), "no 'data_offsets'", "a"),
            ("offsets beyond the file", safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0]), "run past the data area", "a"),
            ("end before begin", safetensors(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight), "end is before begin", "a"),
            ("size lies about the shape", safetensors(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#, data: eight), "hold 8 bytes but float32 [4] needs 16", "a"),
            ("overlapping tensors", safetensors(#"{"a":\#(f32),"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "overlap tensor 'a'", "b"),
            ("gap between tensors", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "leave a gap", "a"),
            ("bytes after the last tensor", safetensors(#"{"a":\#(f32)}"#, data: eight + [1]), "trailing bytes", nil),
            ("non-string metadata", safetensors(#"{"__metadata__":{"epoch":3}}"#), "expected a string", "epoch"),
            ("deep nesting", safetensors(String(repeating: "[", count: 100_000)), "nested deeper than", nil),
            ("bad escape", safetensors(#"{"a\q":1}"#), "unknown escape", nil),
        ]
        for (what, bytes, fragment, key) in rows {
            let p = try write(bytes, to: "bad.safetensors")
            guard let e = checkpointError({ _ = try SafetensorsReader.read(path: p) }) else { continue }
            XCTAssertTrue(e.message.contains(fragment), "\(what): '\(e.message)' lacks '\(fragment)'")
            XCTAssertEqual(e.file, p, what)
            XCTAssertNotNil(e.offset, "\(what): error names a byte offset")
            XCTAssertEqual(e.key, key, what)
            XCTAssertFalse(e.description.contains("\n"), "\(what): one line")
        }
    }

    func testHeaderLengthCheckedBeforeParsingIsCheap() throws {
        // A header length of 2^62 in a 10-byte file must be rejected without allocating or mapping that much.
        let p = try write(safetensors("{}", declaredLength: UInt64(1) << 62), to: "huge.safetensors")
        let e = checkpointError { _ = try Checkpoint.open(p) }
        XCTAssertEqual(e?.offset, 0)
    }

    func testJSONQuoting() {
        XCTAssertEqual(HeaderJSON.quote("a\"b\\c\u{01}é"), #""a\"b\\c\u0001é""#)
        let text = #"{"k":"a\"b\\c\u0001\u00e9\ud83d\ude00"}"#
        let node = Array(text.utf8).withUnsafeBytes { try? HeaderJSON.parse($0, base: 0) }
        guard case .object(let members)? = node?.value, case .string(let s) = members.first?.node.value else {
            return XCTFail("parse failed")
        }
        XCTAssertEqual(s, "a\"b\\c\u{01}é😀")
    }
}
