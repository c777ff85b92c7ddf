import Checkpoints
import Foundation
import XCTest
@testable import TensorCore

/// The new CNN kernels against outputs written by real PyTorch (Tools/make_kernel_fixtures.py states the versions:
/// torch 2.15 F.conv2d, BatchNorm2d, F.silu, torch.sigmoid, torch.tanh, F.affine_grid, F.grid_sample, einops
/// rearrange, torch.cat). Tolerance |Δ| ≤ 1e-5 + 1e-5·|ref| (float32 sums in another order), unless stated.
final class KernelFixtureTests: XCTestCase {
    static let fixture: StateDict? = {
        guard let url = Bundle.module.url(forResource: "kernels", withExtension: "safetensors", subdirectory: "Fixtures") else { return nil }
        return try? Checkpoint.open(url.path)
    }()

    func t(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> FloatTensor {
        guard let sd = Self.fixture else { throw XCTSkip("kernels.safetensors missing: run Tools/make_kernel_fixtures.py") }
        guard let entry = sd.tensors.first(where: { $0.name == name }) else {
            XCTFail("fixture has no tensor \(name)", file: file, line: line); throw CocoaError(.fileReadCorruptFile)
        }
        return FloatTensor(try entry.load())
    }

    func assertClose(_ got: FloatTensor, _ want: FloatTensor, atol: Float = 1e-5, rtol: Float = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.shape, want.shape, "shape", file: file, line: line)
        guard got.shape == want.shape else { return }
        var worst: Float = 0, worstIndex = -1
        for i in 0..<got.count {
            let (g, w) = (got.data[i], want.data[i])
            if g.isNaN && w.isNaN { continue }
            let d = abs(g - w)
            if !(d <= atol + rtol * abs(w)) && (worstIndex < 0 || d > worst || d.isNaN) { worst = d; worstIndex = i }
        }
        if worstIndex >= 0 {
            XCTFail("mismatch at \(worstIndex): got \(got.data[worstIndex]), PyTorch \(want.data[worstIndex]) (|Δ| = \(worst))",
                    file: file, line: line)
        }
    }

    func testFixtureIsPresent() {
        XCTAssertNotNil(Self.fixture, "Tests/TensorCoreTests/Fixtures/kernels.safetensors (Tools/make_kernel_fixtures.py)")
    }

    func testDepthwiseAndGroupedConvolutions() throws {
        // (case, stride, padding, dilation, groups, activation)
        let cases: [(String, Int, Int, Int, Int, Epilogue)] = [
            ("dw_s1_silu", 1, 1, 1, 6, .silu), ("dw_s2_silu", 2, 1, 1, 5, .silu), ("dw_mult2", 1, 1, 1, 3, .none),
            ("grouped", 2, 1, 1, 4, .none), ("grouped_dil", 1, 2, 2, 2, .none),
        ]
        for (name, s, p, d, g, act) in cases {
            let x = try t("\(name).x"), w = try t("\(name).w")
            let b: FloatTensor? = name == "dw_mult2" || name == "grouped_dil" ? nil : try t("\(name).b")
            let r: FloatTensor? = name == "grouped" ? try t("grouped.residual") : nil
            let got = Kernels.conv2d(x, weight: w, bias: b, options: Conv2dOptions(stride: s, padding: p, dilation: d, groups: g),
                                     residual: r, activation: act)
            assertClose(got, try t("\(name).out"))
        }
    }

    /// Depthwise conv + BatchNorm2d + SiLU through the folded plan, as ConvBatchNorm runs it.
    func testDepthwiseWithFoldedBatchNormAndSiLU() throws {
        let folded = Kernels.foldBatchNorm(convWeight: try t("dw_bn_silu.w"), convBias: nil, bnWeight: try t("dw_bn_silu.bn_weight"),
                                           bnBias: try t("dw_bn_silu.bn_bias"), runningMean: try t("dw_bn_silu.bn_mean"),
                                           runningVar: try t("dw_bn_silu.bn_var"))
        let plan = Conv2dPlan(weight: folded.weight, bias: folded.bias, options: Conv2dOptions(stride: 2, padding: 1, groups: 8))
        assertClose(Kernels.conv2d(try t("dw_bn_silu.x"), plan: plan, activation: .silu), try t("dw_bn_silu.out"))
    }

    func testActivations() throws {
        let x = try t("act.x")
        assertClose(Kernels.silu(x), try t("act.silu"), atol: 1e-6, rtol: 1e-6)
        assertClose(Kernels.sigmoid(x), try t("act.sigmoid"), atol: 1e-7, rtol: 1e-6)
        assertClose(Kernels.tanh(x), try t("act.tanh"), atol: 1e-7, rtol: 1e-6)
    }

    func testAffineGridAndGridSample() throws {
        let x = try t("stn.x"), theta = try t("stn.theta")
        let grid = Kernels.affineGrid(theta: theta, height: 6, width: 10)
        assertClose(grid, try t("stn.grid"), atol: 1e-6, rtol: 1e-6)
        let want = try t("stn.out")
        XCTAssertTrue(want.data.contains(0), "the fixture's grid must reach outside the image (zero padding)")
        assertClose(Kernels.gridSample(x, grid: try t("stn.grid")), want)
        assertClose(Kernels.gridSample(x, grid: grid), want, atol: 1e-5, rtol: 1e-5)
    }

    func testPatchUnfoldFoldAndConcat() throws {
        XCTAssertEqual(Kernels.patchUnfold(try t("patch.x"), patch: (2, 2)), try t("patch.unfolded"))
        XCTAssertEqual(Kernels.patchFold(try t("patch.y"), patch: (2, 2), grid: (2, 3)), try t("patch.folded"))
        XCTAssertEqual(Kernels.concat([try t("cat.a"), try t("cat.b")], dim: 1), try t("cat.out"))
    }
}
