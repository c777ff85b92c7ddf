import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Issue 10: one tensor never sinks a file. Tensors this reader cannot represent are listed by name in
/// `StateDict.unsupported`; the others read bit for bit (the generic fixture comparison checks them).
final class RealFilesTests: XCTestCase {
    func testUnsupportedKindsAreListedByNameAndTheRestReads() throws {
        let path = Fixtures.path("realfiles/unsupported_kinds_zip.pth")
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + ".expected.json"))) as? [String: Any])
        let want = try XCTUnwrap(expected["unsupported"] as? [[String: String]])
        let sd = try Checkpoint.open(path)
        XCTAssertEqual(sd.names, ["w", "b"])
        XCTAssertEqual(sd.unsupported.map(\.name), want.map { $0["name"]! })
        for (u, w) in zip(sd.unsupported, want) {
            XCTAssertTrue(u.what.contains(w["what"]!), "\(u.name): '\(u.what)' does not mention \(w["what"]!)")
        }
        XCTAssertEqual(try sd["w"]?.load().floats(), [1, 2])
    }
}

extension RealFilesTests {
    /// A numpy object array holding anything but numpy data and plain containers is refused, naming the global;
    /// nothing is imported or run.
    func testObjectArrayWithAForeignGlobalIsRefusedNamingIt() {
        XCTAssertThrowsError(try Checkpoint.open(Fixtures.path("realfiles/npy_object_foreign.npy"))) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("__main__.Foreign") && text.contains("npy_object_foreign.npy"), text)
        }
    }

    /// numpy arrays inside torch pickles need no allowlist notice: they are data.
    func testNumpyArraysInTorchPicklesAreDataNotForeignGlobals() throws {
        for p in [2, 5] {
            let sd = try Checkpoint.open(Fixtures.path("realfiles/numpy_in_torch_p\(p).pth"))
            XCTAssertEqual(sd.neutralisedGlobals, [], "protocol \(p)")
            XCTAssertEqual(sd["np.fortran"]?.shape, [2, 3])
            XCTAssertEqual(try sd["np.fortran"]?.load().bytes, (0..<6).map(Double.init).withUnsafeBytes { Array($0) }, "C order")
        }
    }
}

extension RealFilesTests {
    /// Torch quantized tensors: integer data under the name, the quantizer beside it (`.q_scale`, `.q_zero_point`,
    /// `.q_axis`); values are checked against torch by the generic fixture comparison, this checks the naming
    /// contract, the inspect note, and that the zip and legacy files agree.
    func testQuantizedTensorsComeOutAsIntegerDataAndTheirQuantizer() throws {
        let zip = try Checkpoint.open(Fixtures.path("realfiles/quantized_zip.pth"))
        let legacy = try Checkpoint.open(Fixtures.path("realfiles/quantized_legacy.pth"))
        XCTAssertEqual(zip.unsupported.map(\.name), [])
        XCTAssertEqual(zip.names.filter { $0.hasPrefix("per_channel_axis1") },
                       ["per_channel_axis1", "per_channel_axis1.q_scale", "per_channel_axis1.q_zero_point", "per_channel_axis1.q_axis"])
        XCTAssertEqual(zip.names.filter { $0.hasPrefix("qint8") }, ["qint8", "qint8.q_scale", "qint8.q_zero_point"])
        let data = try XCTUnwrap(zip["per_channel_axis1"])
        XCTAssertEqual(data.dtype, .uint8)
        XCTAssertTrue(data.location.contains("quint8, per channel, axis 1") && data.location.contains(".q_axis"), data.location)
        XCTAssertEqual(try zip["per_channel_axis1.q_axis"]?.load().bytes, [1, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(zip["qint32"]?.dtype, .int32)
        XCTAssertEqual(zip["transposed"]?.shape, [3, 2])
        XCTAssertEqual(legacy.names, zip.names)
        for t in zip.tensors {
            XCTAssertEqual(try legacy[t.name]?.load().bytes, try t.load().bytes, t.name)
        }
    }
}

extension RealFilesTests {
    /// An `.npz` member holding an object array with anything but numpy data is refused, naming the member and the
    /// global (the plain and numpy-only object members read; see npz_object_arrays*.npz in the fixture comparison).
    func testNPZObjectArrayWithAForeignGlobalIsRefusedNamingMemberAndGlobal() {
        XCTAssertThrowsError(try Checkpoint.open(Fixtures.path("realfiles/npz_object_foreign.npz"))) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("member 'bad.npy'") && text.contains("__main__.Foreign"), text)
        }
    }
}
