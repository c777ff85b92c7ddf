import Foundation
import XCTest
@testable import TensorCore

/// The direct grouped / depthwise convolution, the SiLU epilogues of every convolution path, affine_grid +
/// grid_sample and the MobileViT patch unfold/fold, against naive Double references (property tests; the PyTorch
/// fixtures are in KernelFixtureTests). Tolerance |Δ| ≤ 1e-5 + 1e-5·|ref| unless a test says otherwise.
/// Helpers (`random`, `assertClose`, `referenceConv`) are `KernelTests`'.
extension KernelTests {
    func siluRef(_ v: Double) -> Double { v / (1 + exp(-v)) }

    /// Grouped convolution equals the per-group reference convolution, across strides, paddings, dilations,
    /// channel multipliers, odd widths (vector tails), widths below one vector and batches; every case takes the
    /// direct path, checked by `useDirectConv`.
    func testDirectGroupedConvMatchesReference() {
        // (N, Cin, H, W, Cout, k, stride, pad, dilation, groups, bias)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
            (1, 16, 32, 32, 16, 3, 1, 1, 1, 16, true),  // MV2Block depthwise, stride 1
            (2, 12, 17, 23, 12, 3, 2, 1, 1, 12, true),  // depthwise stride 2, odd sizes
            (1, 4, 5, 3, 4, 3, 2, 1, 1, 4, false),      // map narrower than one vector
            (1, 6, 9, 9, 12, 3, 1, 1, 1, 6, true),      // channel multiplier 2
            (2, 8, 10, 11, 12, 3, 2, 1, 1, 4, true),    // 2 input channels per group
            (1, 6, 12, 12, 6, 3, 1, 2, 2, 3, false),    // dilation 2
            (1, 4, 13, 14, 4, 5, 1, 2, 1, 4, true),     // 5×5 depthwise
            (1, 3, 15, 16, 6, 3, 3, 1, 1, 3, true),     // stride 3 (gathered)
            (1, 4, 8, 8, 4, 1, 1, 0, 1, 2, true),       // grouped 1×1
            (1, 2, 4, 6, 2, 3, 1, 0, 1, 2, false),      // no padding
        ]
        for (i, c) in cases.enumerated() {
            XCTAssertTrue(Kernels.useDirectConv(groups: c.9, inner: c.1 / c.9 * c.5 * c.5), "case \(i) should be direct")
            let x = random([c.0, c.1, c.2, c.3], seed: UInt64(20 + i))
            let w = random([c.4, c.1 / c.9, c.5, c.5], seed: UInt64(200 + i))
            let b = c.10 ? random([c.4], seed: UInt64(2000 + i)) : nil
            let opts = Conv2dOptions(stride: c.6, padding: c.7, dilation: c.8, groups: c.9)
            let (want, shape) = referenceConv(x, w, b, stride: c.6, pad: c.7, dil: c.8, groups: c.9)
            assertClose(Kernels.conv2d(x, weight: w, bias: b, options: opts), want, shape: shape)
            // Fused residual + SiLU.
            let r = random(shape, seed: UInt64(3000 + i))
            let fused = Kernels.conv2d(x, weight: w, bias: b, options: opts, residual: r, activation: .silu)
            assertClose(fused, zip(want, r.data).map { siluRef($0 + Double($1)) }, shape: shape)
        }
        // Wide groups (inner dimension above the threshold) still go through per-group GEMMs, with the same results.
        XCTAssertFalse(Kernels.useDirectConv(groups: 2, inner: 16 * 9))
        let x = random([1, 32, 7, 7], seed: 5), w = random([8, 16, 3, 3], seed: 6)
        let (want, shape) = referenceConv(x, w, nil, stride: 1, pad: 1, dil: 1, groups: 2)
        assertClose(Kernels.conv2d(x, weight: w, options: Conv2dOptions(padding: 1, groups: 2)), want, shape: shape, atol: 1e-4)
    }

    /// The SiLU epilogue on the other convolution paths: pointwise GEMM, batched im2col, row blocks, Winograd
    /// (with and without a residual), and batch norm.
    func testSiLUEpilogueOnEveryConvPath() {
        // (N, Cin, side, Cout, k, pad): pointwise; 3×3 small maps (batched im2col); 3×3 large enough for Winograd;
        // 7×7 on a large map (row blocks).
        for (n, cin, side, cout, k, pad) in [(2, 8, 6, 12, 1, 0), (3, 4, 5, 6, 3, 1), (1, 16, 20, 16, 3, 1), (1, 3, 80, 4, 7, 3)] {
            let x = random([n, cin, side, side], seed: 31), w = random([cout, cin, k, k], seed: 32)
            let b = random([cout], seed: 33)
            let (conv, shape) = referenceConv(x, w, b, stride: 1, pad: pad, dil: 1, groups: 1)
            let plan = Conv2dPlan(weight: w, bias: b, options: Conv2dOptions(padding: pad))
            assertClose(Kernels.conv2d(x, plan: plan, activation: .silu), conv.map(siluRef), shape: shape, atol: 1e-4, rtol: 1e-4)
            let r = random(shape, seed: 34)
            assertClose(Kernels.conv2d(x, plan: plan, residual: r, activation: .silu),
                        zip(conv, r.data).map { siluRef($0 + Double($1)) }, shape: shape, atol: 1e-4, rtol: 1e-4)
        }
        let x = random([2, 3, 4, 5], seed: 35)
        let one = FloatTensor(shape: [3], repeating: 1), zero = FloatTensor(shape: [3], repeating: 0)
        let bn = Kernels.batchNorm(x, weight: one, bias: zero, runningMean: zero, runningVar: one, eps: 0, activation: .silu)
        assertClose(bn, x.data.map { siluRef(Double($0)) }, shape: x.shape, atol: 1e-6, rtol: 1e-6)
    }

    func testSiLUKernelAndAccuracy() {
        let grid = (0..<200_001).map { Float($0 - 100_000) / 1000 }   // −100 … 100 step 0.001
        var worst = 0.0, at: Float = 0
        let y = Kernels.silu(FloatTensor(shape: [grid.count], data: grid))
        for (v, got) in zip(grid, y.data) {
            let want = siluRef(Double(v))
            // Relative where |silu| ≥ 1e-20 (x > −51); below, the absolute error is under 1e-26 (PyTorch itself
            // underflows to −0 from x ≈ −88.7).
            let e = abs(Double(got) - want) / max(abs(want), 1e-20)
            if e > worst || e.isNaN { worst = e; at = v }
        }
        XCTAssertLessThan(worst, 5e-7, "silu relative error at \(at)")
        let edge = Kernels.silu(FloatTensor(shape: [4], data: [.infinity, -.infinity, .nan, 0]))
        XCTAssertEqual(edge.data[0], .infinity); XCTAssertTrue(edge.data[1].isNaN); XCTAssertTrue(edge.data[2].isNaN)
        XCTAssertEqual(edge.data[3], 0)
    }

    // MARK: spatial transformer

    /// grid_sample of a grid that maps pixel centres to themselves returns the image; shifted by one pixel, the
    /// border column becomes 0 (zero padding); half a pixel averages neighbours.
    func testAffineGridAndGridSample() {
        let x = random([2, 3, 5, 7], seed: 40)
        let identity = FloatTensor(shape: [2, 2, 3], data: [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0])
        let grid = Kernels.affineGrid(theta: identity, height: 5, width: 7)
        XCTAssertEqual(grid.shape, [2, 5, 7, 2])
        XCTAssertEqual(Double(grid.data[0]), -6.0 / 7, accuracy: 1e-7)
        XCTAssertEqual(Double(grid.data[1]), -4.0 / 5, accuracy: 1e-7)
        assertClose(Kernels.gridSample(x, grid: grid), x.data.map(Double.init), shape: x.shape, atol: 1e-6, rtol: 1e-6)

        // Shift right by one pixel: x-translation 2/W samples column j+1.
        let shift = FloatTensor(shape: [2, 2, 3], data: [1, 0, 2.0 / 7, 0, 1, 0, 1, 0, 2.0 / 7, 0, 1, 0])
        let shifted = Kernels.gridSample(x, grid: Kernels.affineGrid(theta: shift, height: 5, width: 7))
        var want = [Double]()
        for plane in 0..<6 { for i in 0..<5 { for j in 0..<7 {
            want.append(j + 1 < 7 ? Double(x.data[(plane * 5 + i) * 7 + j + 1]) : 0)
        }}}
        assertClose(shifted, want, shape: x.shape, atol: 1e-5, rtol: 1e-5)

        // Half a pixel to the right: mean of horizontal neighbours; the last column sees half of itself.
        let half = FloatTensor(shape: [2, 2, 3], data: [1, 0, 1.0 / 7, 0, 1, 0, 1, 0, 1.0 / 7, 0, 1, 0])
        let halfShifted = Kernels.gridSample(x, grid: Kernels.affineGrid(theta: half, height: 5, width: 7))
        want = []
        for plane in 0..<6 { for i in 0..<5 { for j in 0..<7 {
            let a = Double(x.data[(plane * 5 + i) * 7 + j]), b = j + 1 < 7 ? Double(x.data[(plane * 5 + i) * 7 + j + 1]) : 0
            want.append((a + b) / 2)
        }}}
        assertClose(halfShifted, want, shape: x.shape, atol: 1e-5, rtol: 1e-5)

        // Non-finite grid points: NaN propagates, ±inf samples outside (0); no read leaves the input.
        let odd = FloatTensor(shape: [2, 1, 3, 2], data: [.nan, 0, .infinity, 0, -.infinity, .infinity,
                                                          1e30, -1e30, 0.99, 0.99, -1, -1])
        let s = Kernels.gridSample(x, grid: odd)
        XCTAssertEqual(s.shape, [2, 3, 1, 3])
        XCTAssertTrue(s.data[0].isNaN)
        XCTAssertEqual(s.data[1], 0); XCTAssertEqual(s.data[2], 0)
        XCTAssertEqual(s.data[9], 0)
        // A corner that is out of bounds contributes 0 even next to a non-finite pixel.
        var inf = FloatTensor(shape: [1, 1, 2, 2], data: [1, 2, 3, .infinity])
        inf.data[3] = .infinity
        let edge = Kernels.gridSample(inf, grid: FloatTensor(shape: [1, 1, 1, 2], data: [-1, -1]))
        XCTAssertEqual(edge.data[0], 0.25)
    }

    // MARK: patches

    func testPatchUnfoldFoldRoundTrip() {
        let x = random([2, 3, 4, 6], seed: 50)
        let u = Kernels.patchUnfold(x, patch: (2, 2))
        XCTAssertEqual(u.shape, [2, 4, 6, 3])
        // out[b, py·pw + px, hy·nw + wx, d] = x[b, d, hy·ph + py, wx·pw + px]
        for b in 0..<2 { for p in 0..<4 { for t in 0..<6 { for d in 0..<3 {
            let (py, px, hy, wx) = (p / 2, p % 2, t / 3, t % 3)
            XCTAssertEqual(u.data[((b * 4 + p) * 6 + t) * 3 + d], x.data[((b * 3 + d) * 4 + hy * 2 + py) * 6 + wx * 2 + px])
        }}}}
        XCTAssertEqual(Kernels.patchFold(u, patch: (2, 2), grid: (2, 3)), x)
        let big = random([1, 96, 32, 32], seed: 51)   // large enough to run in parallel
        XCTAssertEqual(Kernels.patchFold(Kernels.patchUnfold(big, patch: (2, 2)), patch: (2, 2), grid: (16, 16)), big)
    }
}
