import XCTest
@testable import TensorCore

final class DTypeConversionTests: XCTestCase {
    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(DTypeConversion.floatToBF16(1.0), 0x3F80)
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (down).
        XCTAssertEqual(DTypeConversion.floatToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        XCTAssertEqual(DTypeConversion.floatToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertTrue(DTypeConversion.bf16ToFloat(DTypeConversion.floatToBF16(.nan)).isNaN)
    }

    func testHalfRoundTrip() {
        for v: Float in [0, 1, -2.5, 65504, 6.1035156e-05] {
            XCTAssertEqual(DTypeConversion.f16ToFloat(DTypeConversion.floatToF16(v)), v)
        }
    }

    func testIntegerConversionIsExact() {
        let t = Tensor(dtype: .int64, shape: [3], bytes: [Int64(-5), 1 << 40, 7].withUnsafeBytes { Array($0) })
        let f = t.converted(to: .float64)
        let back = f.converted(to: .int64)
        XCTAssertEqual(back.bytes, t.bytes)
        XCTAssertEqual(t.converted(to: .bool).bytes, [1, 1, 1])
    }
}
