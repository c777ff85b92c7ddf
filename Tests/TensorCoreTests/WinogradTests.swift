import XCTest
@testable import TensorCore

/// Winograd F(4×4, 3×3), `Conv2dPlan` dispatch and the split GEMMs of the im2col path, against the nested-loop
/// reference of `KernelTests`. Winograd reassociates each output as a sum of transformed products, so its tolerance
/// is a little wider than the im2col path's: |Δ| ≤ 1e-4 + 1e-4·|ref| for outputs of magnitude ~1–10.
extension KernelTests {
    func testWinogradMatchesReferenceOnAwkwardShapes() {
        // (N, Cin, H, W, Cout, padding, bias, residual + ReLU)
        let cases: [(Int, Int, Int, Int, Int, Int, Bool, Bool)] = [
            (1, 3, 4, 4, 2, 1, false, false),      // one partial tile, fewer lanes than a SIMD group
            (1, 8, 9, 7, 8, 1, true, false),       // odd sizes: tiles overhang bottom and right
            (2, 5, 13, 10, 6, 1, true, true),      // batch > 1: SIMD groups span tile rows and images; fused epilogue
            (3, 4, 6, 6, 9, 0, false, true),       // no padding (4×4 output = exactly one tile per image)
            (1, 6, 11, 5, 3, 2, true, false),      // padding 2
            (2, 7, 23, 23, 5, 1, true, true),      // tile count not a multiple of 8
        ]
        for (i, c) in cases.enumerated() {
            let x = random([c.0, c.1, c.2, c.3], seed: UInt64(300 + i))
            let w = random([c.4, c.1, 3, 3], seed: UInt64(400 + i))
            let b = c.6 ? random([c.4], seed: UInt64(500 + i)) : nil
            let (conv, shape) = referenceConv(x, w, b, stride: 1, pad: c.5, dil: 1, groups: 1)
            let r = c.7 ? random(shape, seed: UInt64(600 + i)) : nil
            let want = r.map { r in zip(conv, r.data).map { max($0 + Double($1), 0) } } ?? conv
            // Stage-parallel (one chunk) and chunk-parallel (chunks of 8–16 tiles, one worker per chunk).
            for chunkBytes in [3 << 20, 4 * 36 * (c.1 + c.4) * 12] {
                let got = Kernels.conv2dWinograd(x, weights: WinogradWeights(w), bias: b, padding: (c.5, c.5),
                                                 residual: r, activation: c.7 ? .relu : .none, chunkBytes: chunkBytes)
                assertClose(got, want, shape: shape, atol: 1e-4, rtol: 1e-4)
            }
        }
    }

    func testConvPlanPicksWinogradAndMatchesIm2col() {
        // ResNet-like 3×3 stride-1 layers go through Winograd; everything else falls back to im2col.
        let x = random([2, 16, 20, 18], seed: 20), w = random([24, 16, 3, 3], seed: 21), b = random([24], seed: 22)
        let r = random([2, 24, 20, 18], seed: 23)
        let plan = Conv2dPlan(weight: w, bias: b, options: Conv2dOptions(padding: 1))
        XCTAssertTrue(Kernels.useWinograd(input: x.shape, weight: w.shape, options: plan.options))
        let got = Kernels.conv2d(x, plan: plan, residual: r, activation: .relu)
        let direct = Kernels.conv2d(x, weight: w, bias: b, options: plan.options, residual: r, activation: .relu)
        assertClose(got, direct.data.map(Double.init), shape: direct.shape, atol: 1e-4, rtol: 1e-4)
        // A second call reuses the prepared weights.
        XCTAssertEqual(Kernels.conv2d(x, plan: plan, residual: r, activation: .relu), got)

        for (opts, kernel) in [(Conv2dOptions(stride: 2, padding: 1), 3), (Conv2dOptions(), 1), (Conv2dOptions(padding: 1, groups: 2), 3)] {
            let wk = random([24, 16 / opts.groups, kernel, kernel], seed: 24)
            let p = Conv2dPlan(weight: wk, bias: b, options: opts)
            XCTAssertFalse(Kernels.useWinograd(input: x.shape, weight: wk.shape, options: opts))
            let (want, shape) = referenceConv(x, wk, b, stride: opts.stride.h, pad: opts.padding.h, dil: 1, groups: opts.groups)
            assertClose(Kernels.conv2d(x, plan: p), want, shape: shape, atol: 1e-4, rtol: 1e-4)
        }
    }

    func testIm2colSplitGemmBlocks() {
        // Large enough to be split over the workers: by columns (wide output) and by rows (7×7 map, many channels).
        for (n, cin, side, cout, stride) in [(1, 16, 40, 32, 2), (1, 64, 7, 96, 1), (2, 32, 9, 40, 1)] {
            let x = random([n, cin, side, side], seed: 30), w = random([cout, cin, 3, 3], seed: 31), b = random([cout], seed: 32)
            let got = Kernels.conv2d(x, weight: w, bias: b, options: Conv2dOptions(stride: stride, padding: 1))
            let (want, shape) = referenceConv(x, w, b, stride: stride, pad: 1, dil: 1, groups: 1)
            assertClose(got, want, shape: shape, atol: 1e-4, rtol: 1e-4)
        }
    }

    func testIm2colRowBlocks() {
        // Blocks of output rows that do not divide the map, several images, groups, stride, bias / no bias, and the
        // fused residual + ReLU epilogue.
        // (N, Cin, H, W, Cout, k, stride, pad, groups, rows per block, bias, residual + ReLU)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Bool, Bool)] = [
            (1, 3, 23, 19, 8, 7, 2, 3, 1, 3, true, true),     // stem-like 7×7/2
            (3, 4, 9, 11, 6, 3, 1, 1, 2, 4, false, false),    // groups, batch
            (2, 5, 10, 10, 7, 3, 2, 1, 1, 1, true, false),    // one output row per block
        ]
        for (i, c) in cases.enumerated() {
            let x = random([c.0, c.1, c.2, c.3], seed: UInt64(700 + i))
            let w = random([c.4, c.1 / c.8, c.5, c.5], seed: UInt64(710 + i))
            let b = c.10 ? random([c.4], seed: UInt64(720 + i)) : nil
            let opts = Conv2dOptions(stride: c.6, padding: c.7, groups: c.8)
            let (conv, shape) = referenceConv(x, w, b, stride: c.6, pad: c.7, dil: 1, groups: c.8)
            let r = c.11 ? random(shape, seed: UInt64(730 + i)) : nil
            let want = r.map { r in zip(conv, r.data).map { max($0 + Double($1), 0) } } ?? conv
            let got = Kernels.conv2dRowBlocks(x, weight: w, bias: b, options: opts, ho: shape[2], wo: shape[3],
                                              rowsPerBlock: c.9, residual: r, activation: c.11 ? .relu : .none)
            assertClose(got, want, shape: shape, atol: 1e-4, rtol: 1e-4)
        }
        // The public entry point takes this path for a large unfolded matrix (3·49 rows × 80·80 columns here).
        XCTAssertNotNil(Kernels.rowBlockHeight(batch: 1, ho: 80, wo: 80, unfoldedRows: 147))
        XCTAssertGreaterThanOrEqual(147 * 80 * 80, Kernels.rowBlockThreshold)
        let x = random([1, 3, 160, 160], seed: 740), w = random([4, 3, 7, 7], seed: 741)
        let got = Kernels.conv2d(x, weight: w, options: Conv2dOptions(stride: 2, padding: 3))
        let (want, shape) = referenceConv(x, w, nil, stride: 2, pad: 3, dil: 1, groups: 1)
        assertClose(got, want, shape: shape, atol: 1e-4, rtol: 1e-4)
    }

    func testMaxPool2dPropagatesNaN() {
        var x = random([1, 1, 6, 6], seed: 40)
        x.data[7] = .nan                      // row 1, column 1: inside the first 3×3/2 windows
        let got = Kernels.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        XCTAssertTrue(got.data[0].isNaN && got.data[1].isNaN && got.data[3].isNaN && got.data[4].isNaN)
        XCTAssertFalse(got.data[2].isNaN || got.data[8].isNaN)
    }
}
