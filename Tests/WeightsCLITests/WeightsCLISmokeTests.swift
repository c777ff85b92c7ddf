import XCTest
@testable import WeightsCLI

final class FormattingTests: XCTestCase {
    func testByteCountsBeyond32BitsPrintInFull() {
        // A ViT-H checkpoint is 2.5 GB: its exact size once printed as a negative 32-bit number.
        XCTAssertEqual(formatBytes(2_641_579_452), "2.5 GiB (2641579452)")
        XCTAssertEqual(formatBytes(5_000_000_000_000), "4.5 TiB (5000000000000)")
        XCTAssertEqual(formatBytes(512), "512 B")
    }
}
