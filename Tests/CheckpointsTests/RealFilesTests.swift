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
