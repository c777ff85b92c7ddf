import Foundation
import XCTest
import CKernels
@testable import TensorCore

/// The transformer kernels' fused and parallel paths (column-split GEMM with bias / residual / activation epilogues,
/// patch embedding, vectorised softmax and LayerNorm; the parallel attention is tested beside the rest of attention
/// in KernelTests.swift) against naive Double references, at odd sizes (vector tails, uneven column blocks) and
/// batch > 1, both below and above the parallel thresholds.
/// Tolerance |Δ| ≤ 1e-5 + 1e-5·|ref| unless a test says otherwise. Helpers (`random`, `assertClose`) are
/// `KernelTests`'.
extension KernelTests {
    func geluRef(_ v: Double) -> Double { 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }

    // MARK: linear

    func testLinearEpiloguesMatchReference() {
        // (batch, tokens, in, out): small enough for one block, and large enough (≥ 2^20 multiply-adds) for the
        // column split, with widths that leave a short last block and vector tails. Up to `shortInputRows` rows
        // (6, 111, 128: whole 4 × 4 transpose tiles and ragged ones) take the transposed-product path, more rows
        // (129, 197) and in = 0 the direct one.
        XCTAssertEqual(Kernels.shortInputRows, 128)
        for (b, t, inF, outF) in [(2, 3, 5, 7), (3, 37, 129, 131), (2, 64, 72, 132), (1, 129, 72, 130), (1, 197, 96, 100),
                                  (2, 5, 0, 9)] {
            let x = random([b, t, inF], seed: UInt64(inF + 1)), w = random([outF, inF], seed: UInt64(outF + 2))
            let bias = random([outF], seed: 3), residual = random([b, t, outF], seed: 4)
            for (useBias, useResidual, gelu) in [(true, false, false), (false, false, false), (true, true, false),
                                                 (false, true, false), (true, false, true), (true, true, true)] {
                let got = Kernels.linear(x, weight: w, bias: useBias ? bias : nil, activation: gelu ? .gelu : nil,
                                         residual: useResidual ? residual : nil)
                var want = [Double]()
                for r in 0..<(b * t) { for o in 0..<outF {
                    var acc = useBias ? Double(bias.data[o]) : 0
                    for i in 0..<inF { acc += Double(x.data[r * inF + i]) * Double(w.data[o * inF + i]) }
                    if useResidual { acc += Double(residual.data[r * outF + o]) }
                    want.append(gelu ? geluRef(acc) : acc)
                }}
                assertClose(got, want, shape: [b, t, outF], atol: 2e-5, rtol: 2e-5)
            }
        }
    }

    func testLinearLeavesOpenBLASThreadCount() {
        let before = Gemm.threads
        _ = Kernels.linear(random([64, 128], seed: 5), weight: random([160, 128], seed: 6))
        XCTAssertEqual(Gemm.threads, before)
    }

    // MARK: patch embedding

    func testPatchEmbedMatchesStridedConvolution() {
        // 11×13 with patch 4: the last rows / columns belong to no whole patch and are dropped, as by the conv.
        for (n, c, h, w, p, d) in [(2, 3, 11, 13, 4, 5), (3, 2, 32, 32, 8, 40)] {
            let x = random([n, c, h, w], seed: UInt64(h)), wt = random([d, c, p, p], seed: 7), bias = random([d], seed: 8)
            let got = Kernels.patchEmbed(x, weight: wt, bias: bias, patch: p)
            let (gh, gw) = (h / p, w / p)
            var want = [Double]()
            for img in 0..<n { for py in 0..<gh { for px in 0..<gw { for o in 0..<d {
                var acc = Double(bias.data[o])
                for ch in 0..<c { for ky in 0..<p { for kx in 0..<p {
                    acc += Double(x.data[((img * c + ch) * h + py * p + ky) * w + px * p + kx])
                        * Double(wt.data[((o * c + ch) * p + ky) * p + kx])
                }}}
                want.append(acc)
            }}}}
            assertClose(got, want, shape: [n, gh * gw, d])
        }
    }

    // MARK: softmax and LayerNorm

    func testSoftmaxRowsWithTailsAndInfinities() {
        // Both implementations: Swift SIMD8 and, where the CPU has AVX2 + FMA, the C one (the default there).
        let saved = FastMath.avx2Kernels
        defer { FastMath.avx2Kernels = saved }
        for avx2 in weights_cpu_has_avx2_fma() != 0 ? [false, true] : [false] {
            FastMath.avx2Kernels = avx2
            softmaxRowsWithTailsAndInfinities()
        }
    }

    func softmaxRowsWithTailsAndInfinities() {
        for cols in [1, 7, 8, 13, 197] {
            var x = random([3, cols], seed: UInt64(cols))
            x.data[0] = -.infinity                      // one masked entry
            for j in 0..<cols { x.data[2 * cols + j] = x.data[2 * cols + j] * 50 + 1000 }   // large, spread values
            let got = Kernels.softmax(x)
            var want = [Double]()
            for r in 0..<3 {
                let row = x.data[(r * cols)..<((r + 1) * cols)].map(Double.init)
                let m = row.max()!
                let e = row.map { Foundation.exp($0 - m) }
                let s = e.reduce(0, +)
                want += e.map { $0 / s }
            }
            if cols == 1 {
                XCTAssertTrue(got.data[0].isNaN, "a row of only −inf is 0/0 as in PyTorch")
                XCTAssertEqual(Array(got.data[1...]), [1, 1])
            } else {
                assertClose(got, want, shape: [3, cols], atol: 1e-6)
            }
        }
        for data: [Float] in [[1, 2, .nan, 4, 5, 6, 7, 8, 9], [.nan, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, .nan],
                              [.nan, 1, 2, 3, 4, 5, 6, 7, 8]] {
            let nan = Kernels.softmax(FloatTensor(shape: [1, data.count], data: data))
            XCTAssertTrue(nan.data.allSatisfy { $0.isNaN }, "\(data) (AVX2: \(FastMath.avx2Kernels))")
        }
    }

    // MARK: layer norm

    func testLayerNormTailsOffsetsAndParallelRows() {
        for (rows, d, offset) in [(5, 19, Float(0)), (3, 8, 0), (200, 768, 0), (7, 100, 1000), (64, 72, -300)] {
            let raw = random([rows, d], seed: UInt64(d))
            let x = FloatTensor(shape: raw.shape, data: raw.data.map { $0 * 0.5 + offset })
            let gamma = random([d], seed: 9), beta = random([d], seed: 10)
            let got = Kernels.layerNorm(x, weight: gamma, bias: beta, eps: 1e-6)
            var want = [Double]()
            for r in 0..<rows {
                let row = x.data[(r * d)..<((r + 1) * d)].map(Double.init)
                let mean = row.reduce(0, +) / Double(d)
                let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
                for i in 0..<d { want.append((row[i] - mean) / (v + 1e-6).squareRoot() * Double(gamma.data[i]) + Double(beta.data[i])) }
            }
            // With an offset of 1000 the mean rounded to Float (as PyTorch's float kernel also uses it) is off by up to
            // 3e-5, shifting outputs by that times 1/std ≈ 3.5.
            assertClose(got, want, shape: [rows, d], atol: offset == 0 ? 2e-5 : 2e-4, rtol: 1e-4)
        }
    }
}
