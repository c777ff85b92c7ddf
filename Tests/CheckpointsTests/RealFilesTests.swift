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
