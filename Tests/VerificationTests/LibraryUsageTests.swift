import Foundation
import Weights
import XCTest

/// The README's library example, as a user would write it.
final class LibraryUsageTests: XCTestCase {
    func testLoadAndRunInAFewLines() throws {
        let dir = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Fixtures")

        var model = try ModelRegistry.make(name: "vit_tiny_patch8_32")
        let report = try model.load("\(dir)/vit_tiny_patch8_32.jax.npz")      // table picked from the file's keys
        print(report.rendered())

        let image = FloatTensor(shape: [1, 3, 32, 32], repeating: 0.5)
        let logits = try model.forward(image)

        XCTAssertEqual(report.applied.count, model.parameterKeys.count)
        XCTAssertEqual(logits.shape, [1, 10])
        XCTAssertTrue(logits.data.allSatisfy(\.isFinite))
    }
}
