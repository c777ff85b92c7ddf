import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Issue 10 through the CLI: every dtype in `inspect`, tensors an output format cannot hold (`--skip-unsupported`),
/// and `--dtype` applied to floating tensors only (float8 widened exactly, complex kept).
final class RealFilesCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-realfiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    static let fixturesRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures/realfiles").path

    func testInspectShowsTorchSpellingsAndWhatNoFormatHolds() throws {
        let r = try CLI.run(["inspect", Self.fixturesRoot + "/every_dtype_zip.pth"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for dtype in ["complex64", "complex128", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                      "float8_e5m2fnuz", "float8_e8m0fnu"] {
            XCTAssertTrue(r.stdout.contains(" \(dtype) "), "\(dtype) missing:\n\(r.stdout)")
        }
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("complex128 ") }
        XCTAssertTrue(line?.hasSuffix("no safetensors form") ?? false, String(describing: line))
        let packed = try CLI.run(["inspect", Self.fixturesRoot + "/packed_subbyte.safetensors", "--json"])
        XCTAssertEqual(packed.status, 0, packed.stderr)
        XCTAssertTrue(packed.stdout.contains(#""dtype":"float4_e2m1fn""#) || packed.stdout.contains(#""dtype": "float4_e2m1fn""#), packed.stdout)
        XCTAssertTrue(packed.stdout.contains("cannot_write_to"), packed.stdout)
    }

    func testConvertRefusesATensorTheFormatCannotHoldNamingIt() throws {
        let out = tmp.appendingPathComponent("o.safetensors").path
        let r = try CLI.run(["convert", Self.fixturesRoot + "/every_dtype_zip.pth", "-o", out])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("complex128") && r.stderr.contains("--skip-unsupported"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), [])
    }

    func testSkipUnsupportedWritesTheRestAndListsEachSkipped() throws {
        let input = Self.fixturesRoot + "/every_dtype_zip.pth"
        let out = tmp.appendingPathComponent("o.safetensors").path
        let r = try CLI.run(["convert", input, "-o", out, "--skip-unsupported"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped 'complex128': safetensors cannot hold complex128 tensors"), r.stderr)
        let source = try Checkpoint.open(input), copy = try SafetensorsReader.read(path: out)
        XCTAssertEqual(Set(copy.names), Set(source.names).subtracting(["complex128"]))
        for t in copy.tensors { XCTAssertEqual(try t.load().bytes, try source[t.name]?.load().bytes, t.name) }

        // HDF5 has no form for the packed sub-byte floats; the rest (float8 with its dtype attribute) comes back.
        let h5 = tmp.appendingPathComponent("p.h5").path
        let p = try CLI.run(["convert", Self.fixturesRoot + "/packed_subbyte.safetensors", "--to", "h5", "-o", h5, "--skip-unsupported"])
        XCTAssertEqual(p.status, 0, p.stderr)
        for name in ["f6_e2m3", "f6_e3m2", "f4"] { XCTAssertTrue(p.stderr.contains("skipped '\(name)'"), p.stderr) }
        let back = try HDF5Reader.read(path: h5)
        XCTAssertEqual(back.names, ["e8m0"])
        XCTAssertEqual(back.tensors.first?.dtype, .float8_e8m0fnu)
    }

    func testDTypeCastWidensFloat8ExactlyAndKeepsComplexAndIntegers() throws {
        let input = Self.fixturesRoot + "/every_dtype.safetensors"
        let out = tmp.appendingPathComponent("f32.safetensors").path
        let r = try CLI.run(["convert", input, "-o", out, "--dtype", "float32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let source = try SafetensorsReader.read(path: input), copy = try SafetensorsReader.read(path: out)
        for t in source.tensors {
            let c = try XCTUnwrap(copy[t.name], t.name)
            if t.dtype.isFloat8 {
                XCTAssertEqual(c.dtype, .float32, t.name)
                let want = try t.load().floats(), got = try c.load().floats()
                XCTAssertEqual(want.map { $0.isNaN ? 0 : $0.bitPattern }, got.map { $0.isNaN ? 0 : $0.bitPattern }, t.name)
                XCTAssertEqual(want.map(\.isNaN), got.map(\.isNaN), t.name)
            } else if !t.dtype.isFloatingPoint {
                XCTAssertEqual(c.dtype, t.dtype, t.name)
                XCTAssertEqual(try c.load().bytes, try t.load().bytes, t.name)
            }
        }
    }
}

extension RealFilesCLITests {
    func testUnreadableTensorsAreListedAndConvertNamesThemUnlessSkipped() throws {
        let input = Self.fixturesRoot + "/unsupported_kinds_zip.pth"
        let i = try CLI.run(["inspect", input])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("not readable (5; convert needs --skip-unsupported)"), i.stdout)
        XCTAssertTrue(i.stdout.contains("  q4: a quantized tensor stored as torch.QUInt4x2Storage (quint4x2)"), i.stdout)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("weights-u-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let refused = try CLI.run(["convert", input, "-o", out])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("'z'") && refused.stderr.contains("complex32") && refused.stderr.contains("--skip-unsupported"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let skipped = try CLI.run(["convert", input, "-o", out, "--skip-unsupported"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        for name in ["z", "q4", "sp", "nested", "f4x2"] { XCTAssertTrue(skipped.stderr.contains("skipped '\(name)'"), skipped.stderr) }
        XCTAssertEqual(Set(try SafetensorsReader.read(path: out).names), ["w", "b"])
    }
}

extension RealFilesCLITests {
    /// `.keras` through the CLI: inspect names the format and the Keras metadata, convert writes the same tensors as
    /// the `.weights.h5`, and a hostile archive is one error line naming the member.
    func testKerasArchiveInspectConvertAndRefusal() throws {
        let keras = Self.fixturesRoot + "/../keras/tiny.keras"
        let i = try CLI.run(["inspect", keras, "--json"])
        XCTAssertEqual(i.status, 0, i.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(doc["format"] as? String, "keras")
        XCTAssertEqual((doc["tensors"] as? [Any])?.count, 10)
        XCTAssertTrue(i.stdout.contains("keras_config") && i.stdout.contains("keras_metadata"), i.stdout)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("weights-k-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let c = try CLI.run(["convert", keras, "-o", out])
        XCTAssertEqual(c.status, 0, c.stderr)
        let converted = try SafetensorsReader.read(path: out)
        let weights = try Checkpoint.open(Self.fixturesRoot + "/../keras/tiny.weights.h5")
        XCTAssertEqual(converted.names, weights.names)
        for t in weights.tensors { XCTAssertEqual(try converted[t.name]?.load().bytes, try t.load().bytes, t.name) }
        let bad = try CLI.run(["inspect", Self.fixturesRoot + "/../keras/hostile_external.keras"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderrLines.count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("member 'model.weights.h5'") && bad.stderr.contains("external storage"), bad.stderr)
    }
}
