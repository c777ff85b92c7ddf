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

    // The vector kernels must give the scalar conversions' exact bits.

    /// Converts `values` with the bulk (vector, parallel) path, at a deliberately odd byte offset so the loads
    /// are unaligned and the count leaves a scalar tail.
    private func bulk<S, D>(_ values: [S], from: DType, to: DType, as: D.Type) -> [D] {
        let n = values.count
        var src = [UInt8](repeating: 0, count: n * MemoryLayout<S>.stride + 1)
        var dst = [UInt8](repeating: 0, count: n * MemoryLayout<D>.stride + 3)
        src.withUnsafeMutableBytes { s in
            values.withUnsafeBytes { v in (s.baseAddress! + 1).copyMemory(from: v.baseAddress!, byteCount: v.count) }
            dst.withUnsafeMutableBytes { d in
                DTypeConversion.convert(UnsafeRawPointer(s.baseAddress! + 1), from: from, into: d.baseAddress! + 3, to: to, count: n)
            }
        }
        return dst.withUnsafeBytes { d in (0..<n).map { d.loadUnaligned(fromByteOffset: 3 + $0 * MemoryLayout<D>.stride, as: D.self) } }
    }

    func testHalfToFloatIsExactForEveryHalf() {
        let all = (0...0xFFFF).map { UInt16($0) } + [0x3C00, 0x7E00, 0x0001]   // 65539: leaves a tail of 3
        let got = bulk(all, from: .float16, to: .float32, as: UInt32.self)
        for (h, g) in zip(all, got) {
            let want = DTypeConversion.f16ToFloat(h)
            if want.isNaN {
                XCTAssertTrue(Float(bitPattern: g).isNaN, "half 0x\(String(h, radix: 16)) should be NaN")
                XCTAssertEqual(g >> 31, UInt32(h >> 15), "sign of NaN 0x\(String(h, radix: 16))")
            } else {
                XCTAssertEqual(g, want.bitPattern, "half 0x\(String(h, radix: 16))")
            }
        }
    }

    func testFloatToHalfRoundsLikeTheScalarPath() {
        // Every float whose top 16 bits are any value, with low bits that probe the rounding: exactly halfway,
        // just below/above halfway, and odd/even neighbours, plus random floats.
        var values: [Float] = []
        for hi in 0...0xFFFF {
            for lo: UInt32 in [0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0xFFFF, 0x8000, 0x7FFF] {
                values.append(Float(bitPattern: UInt32(hi) << 16 | lo))
            }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200_000 { values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        values += [65504, 65519.99, 65520, -65520, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, .infinity, -.infinity]
        let got = bulk(values, from: .float32, to: .float16, as: UInt16.self)
        var failures = 0
        for (v, g) in zip(values, got) {
            let want = DTypeConversion.floatToF16(v)
            let ok = v.isNaN ? (g & 0x7C00 == 0x7C00 && g & 0x3FF != 0 && g >> 15 == want >> 15) : g == want
            if !ok {
                failures += 1
                if failures < 10 { XCTFail("float 0x\(String(v.bitPattern, radix: 16)) (\(v)): got 0x\(String(g, radix: 16)), want 0x\(String(want, radix: 16))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testBFloat16BulkMatchesScalar() {
        var values: [Float] = [1.5]
        for hi in 0...0xFFFF {
            let top = UInt32(hi) << 16
            for lo: UInt32 in [0, 0x8000, 0x8001, 0x7FFF] { values.append(Float(bitPattern: top | lo)) }
        }
        let narrowed = bulk(values, from: .float32, to: .bfloat16, as: UInt16.self)
        for (v, g) in zip(values, narrowed) {
            XCTAssertEqual(g, DTypeConversion.floatToBF16(v), "float 0x\(String(v.bitPattern, radix: 16))")
        }
        let all = (0...0xFFFF).map { UInt16($0) } + [0x3F80]
        let widened = bulk(all, from: .bfloat16, to: .float32, as: UInt32.self)
        for (h, g) in zip(all, widened) { XCTAssertEqual(g, UInt32(h) << 16) }
    }
}
