import XCTest
import TensorCore
@testable import WeightMapping

final class TransformTests: XCTestCase {
    func iota(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, floats: (0..<n).map(Float.init))
    }

    func testTransposeMatchesDefinition() throws {
        let t = try Transform.transpose.apply(iota([2, 3]))
        XCTAssertEqual(t.shape, [3, 2])
        XCTAssertEqual(t.floats(), [0, 3, 1, 4, 2, 5])
    }

    func testPermuteHWIOToOIHW() throws {
        // x[h][w][i][o] = value; after permute [3,2,0,1] y[o][i][h][w] must equal x[h][w][i][o].
        let x = iota([2, 3, 4, 5])
        let y = try Transform.permute([3, 2, 0, 1]).apply(x)
        XCTAssertEqual(y.shape, [5, 4, 2, 3])
        let xv = x.floats(), yv = y.floats()
        for h in 0..<2 { for w in 0..<3 { for i in 0..<4 { for o in 0..<5 {
            XCTAssertEqual(yv[((o * 4 + i) * 2 + h) * 3 + w], xv[((h * 3 + w) * 4 + i) * 5 + o])
        } } } }
    }

    func testPermuteWorksOnEveryDtype() throws {
        let t = Tensor(dtype: .int16, shape: [2, 2], bytes: [1, 0, 2, 0, 3, 0, 4, 0])
        XCTAssertEqual(try Transform.transpose.apply(t).bytes, [1, 0, 3, 0, 2, 0, 4, 0])
    }

    func testReshapeFlattenSqueeze() throws {
        let t = iota([12, 4, 8])
        XCTAssertEqual(try Transform.flatten(1, 2).apply(t).shape, [12, 32])
        XCTAssertEqual(try Transform.flatten(0, 1).apply(t).shape, [48, 8])
        XCTAssertEqual(try Transform.reshape([-1, 8]).apply(t).shape, [48, 8])
        XCTAssertEqual(try Transform.unsqueeze(0).apply(t).shape, [1, 12, 4, 8])
        XCTAssertEqual(try Transform.squeeze(0).apply(try Transform.unsqueeze(0).apply(t)).shape, [12, 4, 8])
        XCTAssertThrowsError(try Transform.squeeze(1).apply(t)) { XCTAssertTrue("\($0)".contains("not 1")) }
        XCTAssertThrowsError(try Transform.reshape([5, -1]).apply(t)) { XCTAssertTrue("\($0)".contains("does not fit")) }
        XCTAssertThrowsError(try Transform.permute([0, 1]).apply(t)) { XCTAssertTrue("\($0)".contains("does not fit")) }
        XCTAssertEqual(try Transform.flatten(1, 2).apply(t).floats(), t.floats(), "flatten never moves data")
    }

    func testCast() throws {
        let t = try Transform.cast(.float16).apply(Tensor(shape: [2], floats: [1.5, -2]))
        XCTAssertEqual(t.dtype, .float16)
        XCTAssertEqual(t.floats(), [1.5, -2])
    }

    func testConcatAndSplitAreInverse() throws {
        let a = iota([2, 3]), b = Tensor(shape: [2, 2], floats: [10, 11, 12, 13])
        let c = try TensorLayout.concat([a, b], dim: 1)
        XCTAssertEqual(c.shape, [2, 5])
        XCTAssertEqual(c.floats(), [0, 1, 2, 10, 11, 3, 4, 5, 12, 13])
        let parts = try TensorLayout.split(c, dim: 1, sizes: [3, 2])
        XCTAssertEqual(parts[0].floats(), a.floats())
        XCTAssertEqual(parts[1].floats(), b.floats())
        XCTAssertThrowsError(try TensorLayout.concat([a, iota([3, 3])], dim: 1)) { XCTAssertTrue("\($0)".contains("do not agree")) }
        XCTAssertThrowsError(try TensorLayout.split(c, dim: 1, sizes: [3, 3]))
    }
}

/// Shapes from a file whose zero dimension hides an overflow among the others ([0, 2^32, 2^32]) are refused with
/// an error by every transform and layout operation instead of trapping (issue 12, class 7).
final class ShapeOverflowTests: XCTestCase {
    let big = [0, 1 << 32, 1 << 32]

    func testTransformsRefuseOverflowingShapes() {
        for t: Transform in [.flatten(0, 2), .flatten(1, 2), .reshape([-1]), .reshape([0, -1]), .transpose, .permute([2, 1, 0]), .unsqueeze(0)] {
            XCTAssertThrowsError(try t.outputShape(big), "\(t)") { XCTAssertTrue("\($0)".contains("64 bits") || "\($0)".contains("overflow"), "\(t): \($0)") }
        }
        XCTAssertThrowsError(try Transform.reshape([1 << 62, 8]).outputShape([0]))
    }

    func testConcatAndSplitRefuseOverflowingShapes() {
        let t = Tensor(dtype: .float32, shape: big, bytes: [])
        XCTAssertThrowsError(try TensorLayout.concat([t, t], dim: 0))
        XCTAssertThrowsError(try TensorLayout.split(t, dim: 0, sizes: [0]))
        let huge = Tensor(dtype: .float32, shape: [0, 1 << 62], bytes: [])
        XCTAssertThrowsError(try TensorLayout.concat([huge, huge, huge], dim: 1))
        XCTAssertNil(ShapeMath.product(big))
        XCTAssertEqual(ShapeMath.product([0, 3, 4]), 0)
        XCTAssertNil(ShapeMath.sum([Int.max, 1]))
    }
}
