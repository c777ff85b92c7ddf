import Foundation
import XCTest
@testable import TensorCore

/// The float8 formats against torch (Tests/TensorCoreTests/Fixtures/float8.json, written by
/// Tools/make_realfile_fixtures.py): the value of every byte, and the rounding of float32 inputs.
final class Float8Tests: XCTestCase {
    static func tables() throws -> [String: [String: String]] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "float8", withExtension: "json", subdirectory: "Fixtures"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: [String: String]])
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }

    static func floats(_ hex: String) -> [Float] {
        bytes(hex).withUnsafeBytes { raw in (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }

    func testDecodeEveryByteAsTorch() throws {
        let tables = try Self.tables()
        XCTAssertEqual(Set(tables.keys), Set(DType.allCases.filter(\.isFloat8).map(\.rawValue)))
        for (name, t) in tables {
            let dtype = try XCTUnwrap(DType(rawValue: name))
            let want = Self.floats(try XCTUnwrap(t["decode"]))
            XCTAssertEqual(want.count, 256)
            // Through the conversion path `convert --dtype float32` uses.
            let got = Tensor(dtype: dtype, shape: [256], bytes: (0..<256).map(UInt8.init)).converted(to: .float32).floats()
            for b in 0..<256 {
                if want[b].isNaN { XCTAssertTrue(got[b].isNaN, "\(name) byte \(b)") } else {
                    XCTAssertEqual(got[b].bitPattern, want[b].bitPattern, "\(name) byte \(b): \(got[b]) vs torch \(want[b])")
                }
            }
        }
    }

    func testEncodeRoundsAsTorch() throws {
        for (name, t) in try Self.tables() {
            let dtype = try XCTUnwrap(DType(rawValue: name))
            let inputs = Self.floats(try XCTUnwrap(t["encode_in"]))
            let want = Self.bytes(try XCTUnwrap(t["encode_out"]))
            let got = Tensor(shape: [inputs.count], floats: inputs).converted(to: dtype).bytes
            let f = Float8Format(dtype)
            var mismatches: [String] = []
            for i in inputs.indices where got[i] != want[i] && !(f.decode(got[i]).isNaN && f.decode(want[i]).isNaN) {
                mismatches.append("\(inputs[i]) -> \(got[i]) (torch \(want[i]))")
            }
            XCTAssertTrue(mismatches.isEmpty, "\(name): \(mismatches.count) of \(inputs.count) differ: \(mismatches.prefix(8))")
        }
    }

    func testWideningIsExactAndCastsKeepOtherKinds() {
        // float8 → float32 → float8 is the identity on every non-NaN byte.
        for dtype in DType.allCases where dtype.isFloat8 {
            let f = Float8Format(dtype)
            for b in 0...255 where !f.decode(UInt8(b)).isNaN {
                XCTAssertEqual(f.encode(Double(f.decode(UInt8(b)))), UInt8(b) == 0x80 && f.decode(0x80) == 0 && dtype.rawValue.hasSuffix("fnuz") ? 0 : UInt8(b), "\(dtype) \(b)")
            }
        }
        XCTAssertEqual(DType.float8_e4m3fn.cast(to: .float16), .float16)
        XCTAssertEqual(DType.complex64.cast(to: .float16), .complex64)
        XCTAssertEqual(DType.uint64.cast(to: .float32), .uint64)
        XCTAssertEqual(DType.float4_e2m1fn.cast(to: .float32), .float4_e2m1fn)
        XCTAssertEqual(DType.float32.cast(to: .float8_e5m2), .float32)
    }

    func testSizesAndCodes() {
        XCTAssertEqual(ShapeMath.byteCount([3, 2], .float4_e2m1fn), 3)
        XCTAssertNil(ShapeMath.byteCount([3], .float4_e2m1fn))        // 12 bits: not whole bytes
        XCTAssertEqual(ShapeMath.byteCount([4], .float6_e3m2fn), 3)
        XCTAssertNil(ShapeMath.byteCount([2], .float6_e2m3fn))
        XCTAssertEqual(ShapeMath.byteCount([2, 2], .complex128), 64)
        for d in DType.allCases { if let c = d.safetensorsCode { XCTAssertEqual(DType(safetensorsName: c), d) } }
        XCTAssertNil(DType.complex128.safetensorsCode)
    }

    func testComplexPermuteAndConversion() {
        // complex128 transposed: 16-byte elements move as a whole.
        let values: [Double] = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6]   // 2×3 of (re, im)
        let t = Tensor(dtype: .complex128, shape: [2, 3], bytes: values.withUnsafeBytes { Array($0) })
        let p = TensorLayout.permute(t, [1, 0])
        let back = p.bytes.withUnsafeBytes { raw in (0..<12).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) } }
        XCTAssertEqual(back, [1, -1, 4, -4, 2, -2, 5, -5, 3, -3, 6, -6])
        // complex64 ↔ complex128 keeps both parts.
        let c64 = t.converted(to: .complex64)
        XCTAssertEqual(c64.converted(to: .complex128).bytes, t.bytes)
        // uint64 values above Int64.max survive a round trip through float64 where exact.
        let u = Tensor(dtype: .uint64, shape: [1], bytes: withUnsafeBytes(of: UInt64(1) << 63) { Array($0) })
        XCTAssertEqual(u.converted(to: .float64).converted(to: .uint64).bytes, u.bytes)
    }
}
