import Foundation
import XCTest
import CKernels
@testable import TensorCore

/// Each kernel against a straightforward reference written here (nested loops, Double accumulation).
/// Tolerance: |Δ| ≤ 1e-5 + 1e-5·|ref| unless a test says otherwise — the kernels accumulate in Float (and
/// OpenBLAS reorders sums), so agreement is to a few ulps of the accumulated magnitude, not bit-exact.
final class KernelTests: XCTestCase {
    // MARK: helpers

    struct LCG {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    func random(_ shape: [Int], seed: UInt64) -> FloatTensor {
        var g = LCG(state: seed)
        let n = shape.reduce(1, *)
        return FloatTensor(shape: shape, data: (0..<n).map { _ in g.next() })
    }

    func assertClose(_ got: FloatTensor, _ want: [Double], shape: [Int], atol: Double = 1e-5, rtol: Double = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.shape, shape, "shape", file: file, line: line)
        XCTAssertEqual(got.count, want.count, "count", file: file, line: line)
        var worst = 0.0, worstIndex = -1
        for i in 0..<min(got.count, want.count) {
            let d = abs(Double(got.data[i]) - want[i])
            if !(d <= atol + rtol * abs(want[i])) && (d > worst || worstIndex < 0 || d.isNaN) { worst = d; worstIndex = i }
        }
        if worstIndex >= 0 {
            XCTFail("mismatch at \(worstIndex): got \(got.data[worstIndex]), want \(want[worstIndex]) (|Δ| = \(worst))", file: file, line: line)
        }
    }

    // MARK: convolution

    func referenceConv(_ x: FloatTensor, _ w: FloatTensor, _ b: FloatTensor?, stride: Int, pad: Int, dil: Int, groups: Int) -> ([Double], [Int]) {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1
        let wo = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1
        var out = [Double](repeating: 0, count: n * cout * ho * wo)
        let og = cout / groups
        for i in 0..<n { for o in 0..<cout { for y in 0..<ho { for xx in 0..<wo {
            var acc = Double(b?.data[o] ?? 0)
            let g = o / og
            for c in 0..<cg { for ki in 0..<kh { for kj in 0..<kw {
                let iy = y * stride - pad + ki * dil, ix = xx * stride - pad + kj * dil
                if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
                let ci = g * cg + c
                acc += Double(x.data[((i * cin + ci) * h + iy) * wd + ix]) * Double(w.data[((o * cg + c) * kh + ki) * kw + kj])
            }}}
            out[((i * cout + o) * ho + y) * wo + xx] = acc
        }}}}
        return (out, [n, cout, ho, wo])
    }

    func testConv2dMatchesReferenceAcrossOptions() {
        // (N, Cin, H, W, Cout, k, stride, pad, dilation, groups, bias)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
            (2, 3, 9, 7, 4, 3, 1, 1, 1, 1, true),     // 3×3 same padding
            (1, 3, 11, 11, 5, 7, 2, 3, 1, 1, false),  // ResNet stem shape
            (2, 4, 8, 8, 6, 3, 2, 1, 1, 2, true),     // groups
            (1, 2, 10, 9, 3, 3, 1, 2, 2, 1, true),    // dilation
            (2, 8, 5, 5, 4, 1, 1, 0, 1, 1, true),     // pointwise fast path
            (1, 8, 6, 6, 4, 1, 2, 0, 1, 1, false),    // 1×1 stride 2 (downsample)
            (1, 4, 4, 4, 4, 3, 1, 1, 1, 4, false),    // depthwise
            (1, 3, 8, 8, 5, 4, 4, 0, 1, 1, true),     // patch embedding (kernel = stride)
            (1, 2, 5, 5, 1, 7, 1, 3, 1, 1, false),    // CBAM spatial attention: kernel larger than input
            (3, 2, 24, 24, 3, 3, 1, 1, 1, 1, true),   // batched GEMM in uneven chunks (2 + 1 images of 576 pixels)
            (5, 4, 6, 6, 4, 3, 2, 1, 1, 2, true),     // batched GEMM with groups
        ]
        for (i, c) in cases.enumerated() {
            let x = random([c.0, c.1, c.2, c.3], seed: UInt64(10 + i))
            let w = random([c.4, c.1 / c.9, c.5, c.5], seed: UInt64(100 + i))
            let b = c.10 ? random([c.4], seed: UInt64(1000 + i)) : nil
            let got = Kernels.conv2d(x, weight: w, bias: b, options: Conv2dOptions(stride: c.6, padding: c.7, dilation: c.8, groups: c.9))
            let (want, shape) = referenceConv(x, w, b, stride: c.6, pad: c.7, dil: c.8, groups: c.9)
            assertClose(got, want, shape: shape)
        }
    }

    func testConv2dFusedResidualAndReLU() {
        // 6×6 maps batch both images into one GEMM (residual added in the scatter); 40×40 maps run per image
        // (residual accumulated by the GEMM).
        for (n, side) in [(2, 6), (2, 40)] {
            let x = random([n, 3, side, side], seed: 1), w = random([4, 3, 3, 3], seed: 2), b = random([4], seed: 3)
            let r = random([n, 4, side, side], seed: 4)
            let got = Kernels.conv2d(x, weight: w, bias: b, options: Conv2dOptions(padding: 1), residual: r, activation: .relu)
            let (conv, shape) = referenceConv(x, w, b, stride: 1, pad: 1, dil: 1, groups: 1)
            let want = zip(conv, r.data).map { max($0 + Double($1), 0) }
            assertClose(got, want, shape: shape)
            XCTAssertTrue(got.data.contains(0) && got.data.contains { $0 > 0 }, "test must exercise both ReLU branches")
        }
    }

    // MARK: normalisation

    func testBatchNormAndFolding() {
        let x = random([2, 3, 4, 5], seed: 5)
        let gamma = random([3], seed: 6), beta = random([3], seed: 7), mean = random([3], seed: 8)
        let variance = FloatTensor(shape: [3], data: random([3], seed: 9).data.map { abs($0) + 0.1 })
        let eps: Float = 1e-5
        let got = Kernels.batchNorm(x, weight: gamma, bias: beta, runningMean: mean, runningVar: variance, eps: eps)
        var want = [Double]()
        for i in 0..<x.count {
            let c = (i / 20) % 3
            want.append((Double(x.data[i]) - Double(mean.data[c])) / (Double(variance.data[c]) + Double(eps)).squareRoot()
                        * Double(gamma.data[c]) + Double(beta.data[c]))
        }
        assertClose(got, want, shape: x.shape)

        // conv → BN equals the folded conv.
        let w = random([3, 2, 3, 3], seed: 11), cb = random([3], seed: 12), input = random([1, 2, 6, 6], seed: 13)
        let opts = Conv2dOptions(padding: 1)
        let unfused = Kernels.batchNorm(Kernels.conv2d(input, weight: w, bias: cb, options: opts),
                                        weight: gamma, bias: beta, runningMean: mean, runningVar: variance, eps: eps)
        let folded = Kernels.foldBatchNorm(convWeight: w, convBias: cb, bnWeight: gamma, bnBias: beta,
                                           runningMean: mean, runningVar: variance, eps: eps)
        let fused = Kernels.conv2d(input, weight: folded.weight, bias: folded.bias, options: opts)
        assertClose(fused, unfused.data.map(Double.init), shape: unfused.shape, atol: 1e-5, rtol: 1e-5)
    }

    func testLayerNorm() {
        let x = random([2, 3, 16], seed: 14)
        let gamma = random([16], seed: 15), beta = random([16], seed: 16)
        // Large offset: the two-pass variance must not lose precision.
        let shifted = FloatTensor(shape: x.shape, data: x.data.map { $0 + 100 })
        for (input, eps) in [(x, Float(1e-6)), (shifted, Float(1e-5))] {
            let got = Kernels.layerNorm(input, weight: gamma, bias: beta, eps: eps)
            var want = [Double]()
            for r in 0..<6 {
                let row = input.data[(r * 16)..<(r * 16 + 16)].map(Double.init)
                let mean = row.reduce(0, +) / 16
                let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
                for i in 0..<16 { want.append((row[i] - mean) / (v + Double(eps)).squareRoot() * Double(gamma.data[i]) + Double(beta.data[i])) }
            }
            assertClose(got, want, shape: x.shape, atol: 2e-5, rtol: 1e-4)
        }
    }

    // MARK: linear and activations

    func testLinear() {
        let x = random([2, 3, 5], seed: 17), w = random([4, 5], seed: 18), b = random([4], seed: 19)
        for bias in [b, nil] as [FloatTensor?] {
            let got = Kernels.linear(x, weight: w, bias: bias)
            var want = [Double]()
            for r in 0..<6 { for o in 0..<4 {
                var acc = Double(bias?.data[o] ?? 0)
                for i in 0..<5 { acc += Double(x.data[r * 5 + i]) * Double(w.data[o * 5 + i]) }
                want.append(acc)
            }}
            assertClose(got, want, shape: [2, 3, 4])
        }
    }

    func testActivations() {
        let x = FloatTensor(shape: [8], data: [-3, -1, -0.5, 0, 0.5, 1, 3, 20])
        assertClose(Kernels.relu(x), x.data.map { Double(max($0, 0)) }, shape: [8])
        // Exact-erf GELU values (0.5·x·(1 + erf(x/√2)), computed in Double).
        assertClose(Kernels.gelu(x), x.data.map { v in let d = Double(v); return 0.5 * d * (1 + erf(d / 2.0.squareRoot())) }, shape: [8],
                    atol: 1e-6, rtol: 1e-6)
        XCTAssertEqual(Double(Kernels.gelu(FloatTensor(shape: [1], data: [1])).data[0]), 0.8413447460685429, accuracy: 1e-6)
        // GELU differs from its tanh approximation by ~1e-4 around x = -1 … 2; the exact form must be used.
        XCTAssertEqual(Double(Kernels.gelu(FloatTensor(shape: [1], data: [-1])).data[0]), -0.15865525393145707, accuracy: 1e-6)
        assertClose(Kernels.tanh(x), x.data.map { Foundation.tanh(Double($0)) }, shape: [8])
        let big = FloatTensor(shape: [4], data: [-100, -20, 20, 100])
        assertClose(Kernels.sigmoid(big), big.data.map { 1 / (1 + exp(-Double($0))) }, shape: [4], atol: 1e-7)
        assertClose(Kernels.sigmoid(x), x.data.map { 1 / (1 + exp(-Double($0))) }, shape: [8])
        XCTAssertTrue(Kernels.relu(FloatTensor(shape: [1], data: [.nan])).data[0].isNaN)
    }

    /// FastMath against Double on a dense grid; the bounds are the documented accuracy of each approximation.
    func testFastMathAccuracy() {
        func worst(_ xs: [Float], _ f: (FastMath.V) -> FastMath.V, _ ref: (Double) -> Double, relativeTo scale: (Double) -> Double) -> (Double, Float) {
            var w = 0.0, at: Float = 0
            for i in stride(from: 0, to: xs.count, by: 8) {
                var v = FastMath.V(repeating: 0)
                for j in 0..<8 where i + j < xs.count { v[j] = xs[i + j] }
                let r = f(v)
                for j in 0..<8 where i + j < xs.count {
                    let want = ref(Double(xs[i + j]))
                    let e = abs(Double(r[j]) - want) / scale(want)
                    if e > w || e.isNaN { w = e; at = xs[i + j] }
                }
            }
            return (w, at)
        }
        let grid = (0..<200_001).map { Float($0 - 100_000) / 1000 }   // −100 … 100 step 0.001
        let rel: (Double) -> Double = { max(abs($0), 1e-30) }
        let expErr = worst(grid.filter { $0 > -87 && $0 < 88 }, FastMath.exp, Foundation.exp, relativeTo: rel)
        XCTAssertLessThan(expErr.0, 3e-7, "exp relative error at \(expErr.1)")
        let tanhErr = worst(grid, FastMath.tanh, Foundation.tanh, relativeTo: rel)
        XCTAssertLessThan(tanhErr.0, 4e-7, "tanh relative error at \(tanhErr.1)")
        let sigErr = worst(grid, FastMath.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }, relativeTo: rel)
        XCTAssertLessThan(sigErr.0, 4e-7, "sigmoid relative error at \(sigErr.1)")
        // GELU: relative where |gelu| ≥ 0.01, absolute (scaled by 0.01) in the tiny negative tail.
        let geluErr = worst(grid.filter { abs($0) < 12 }, FastMath.gelu, { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) },
                            relativeTo: { max(abs($0), 1e-2) })
        XCTAssertLessThan(geluErr.0, 1e-6, "gelu relative error at \(geluErr.1)")
        // The AVX2 + FMA GELU (CKernels) that VectorFunction.gelu runs on such CPUs: the same bound on the same grid,
        // every tail length, and NaN / ±inf as the Swift version gives them.
        if weights_cpu_has_avx2_fma() != 0 {
            var xs = grid.filter { abs($0) < 12 }
            weights_gelu_avx2(&xs, xs.count)
            var worstC = 0.0, atC: Float = 0
            for (x, y) in zip(grid.filter { abs($0) < 12 }, xs) {
                let want = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
                let e = abs(Double(y) - want) / max(abs(want), 1e-2)
                if !(e <= worstC) { worstC = e.isNaN ? .infinity : e; atC = x }
            }
            XCTAssertLessThan(worstC, 1e-6, "AVX2 gelu relative error at \(atC)")
            let special: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 30, -30, 1e-30, -1e-30, 3.5, -3.5]
            for count in 1...special.count {
                var c = Array(special.prefix(count)), sw = c
                weights_gelu_avx2(&c, count)
                FastMath.apply(&sw, count, FastMath.gelu)
                for i in 0..<count {
                    XCTAssertTrue(c[i] == sw[i] || (c[i].isNaN && sw[i].isNaN) || abs(c[i] - sw[i]) <= 1e-6 * max(abs(sw[i]), 1e-2),
                                  "gelu(\(special[i])): AVX2 \(c[i]), Swift \(sw[i]) (length \(count))")
                }
            }
            // The switch: VectorFunction.gelu agrees with either path.
            let x = FloatTensor(shape: [37], data: (0..<37).map { Float($0 - 18) / 4 })
            FastMath.avx2Kernels = false
            let swift = Kernels.gelu(x)
            FastMath.avx2Kernels = true
            let c = Kernels.gelu(x)
            for i in 0..<37 { XCTAssertEqual(c.data[i], swift.data[i], accuracy: 1e-6 * max(abs(swift.data[i]), 1e-2)) }
        }
        // Edge cases.
        let edge = FastMath.exp(FastMath.V(-.infinity, -200, -87.5, 0, 1, 88.8, .infinity, .nan))
        XCTAssertEqual(edge[0], 0); XCTAssertEqual(edge[1], 0); XCTAssertEqual(edge[2], 0)
        XCTAssertEqual(edge[3], 1); XCTAssertEqual(Double(edge[4]), M_E, accuracy: 1e-6)
        XCTAssertEqual(edge[5], .infinity); XCTAssertEqual(edge[6], .infinity); XCTAssertTrue(edge[7].isNaN)
        let sat = FastMath.tanh(FastMath.V(-50, -10, 10, 50, 0, -0.0, 1e-20, 0.625))
        XCTAssertEqual(Array(0..<4).map { sat[$0] }, [-1, -1, 1, 1])
        XCTAssertEqual(sat[4], 0); XCTAssertEqual(sat[6], 1e-20)
    }

    func testSoftmaxIsStableAndNormalised() {
        let x = FloatTensor(shape: [3, 4], data: [1, 2, 3, 4, 1000, 1001, 1002, 1003, -5, 0, 5, -1e30])
        let got = Kernels.softmax(x)
        var want = [Double]()
        for r in 0..<3 {
            let row = x.data[(r * 4)..<(r * 4 + 4)].map(Double.init)
            let m = row.max()!
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            want += e.map { $0 / s }
        }
        assertClose(got, want, shape: [3, 4], atol: 1e-6)
        XCTAssertFalse(got.data.contains { $0.isNaN })
    }

    // MARK: pooling

    func testMaxPool2d() {
        for (h, w, k, s, p) in [(7, 7, 3, 2, 1), (8, 6, 3, 2, 1), (6, 6, 2, 2, 0), (5, 5, 3, 1, 1)] {
            let x = random([2, 3, h, w], seed: UInt64(h * 10 + w))
            let got = Kernels.maxPool2d(x, kernel: k, stride: s, padding: p)
            let ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1
            var want = [Double]()
            for plane in 0..<6 { for y in 0..<ho { for xx in 0..<wo {
                var m = -Double.infinity
                for i in 0..<k { for j in 0..<k {
                    let iy = y * s - p + i, ix = xx * s - p + j
                    if iy >= 0 && iy < h && ix >= 0 && ix < w { m = max(m, Double(x.data[plane * h * w + iy * w + ix])) }
                }}
                want.append(m)
            }}}
            assertClose(got, want, shape: [2, 3, ho, wo], atol: 0, rtol: 0)
        }
    }

    func testAdaptivePools() {
        // Non-divisible sizes give overlapping windows: 7 → 3 uses [0,3) [2,5) [4,7).
        XCTAssertEqual(Kernels.adaptiveWindow(1, input: 7, output: 3), 2..<5)
        XCTAssertEqual(Kernels.adaptiveWindow(2, input: 5, output: 3), 3..<5)
        for (h, w, oh, ow) in [(7, 7, 3, 3), (5, 6, 2, 4), (4, 4, 1, 1), (3, 3, 5, 5)] {
            let x = random([2, 2, h, w], seed: UInt64(h + 31 * w + oh))
            var avg = [Double](), mx = [Double]()
            for plane in 0..<4 { for i in 0..<oh { for j in 0..<ow {
                let r0 = Int(floor(Double(i * h) / Double(oh))), r1 = Int(ceil(Double((i + 1) * h) / Double(oh)))
                let c0 = Int(floor(Double(j * w) / Double(ow))), c1 = Int(ceil(Double((j + 1) * w) / Double(ow)))
                var s = 0.0, m = -Double.infinity
                for y in r0..<r1 { for xx in c0..<c1 { let v = Double(x.data[plane * h * w + y * w + xx]); s += v; m = max(m, v) } }
                avg.append(s / Double((r1 - r0) * (c1 - c0))); mx.append(m)
            }}}
            assertClose(Kernels.adaptiveAvgPool2d(x, outputSize: (oh, ow)), avg, shape: [2, 2, oh, ow])
            assertClose(Kernels.adaptiveMaxPool2d(x, outputSize: (oh, ow)), mx, shape: [2, 2, oh, ow], atol: 0, rtol: 0)
        }
    }

    // MARK: element-wise

    /// Broadcast reference by explicit multi-index; `f` works in Float so the comparison can be exact.
    func referenceBroadcast(_ a: FloatTensor, _ b: FloatTensor, _ f: (Float, Float) -> Float) -> ([Double], [Int]) {
        let shape = Kernels.broadcastShape(a.shape, b.shape)!
        let r = shape.count
        func index(_ t: FloatTensor, _ idx: [Int]) -> Int {
            let s = [Int](repeating: 1, count: r - t.rank) + t.shape
            var off = 0
            for d in 0..<r { off = off * s[d] + (s[d] == 1 ? 0 : idx[d]) }
            return off
        }
        var out = [Double]()
        let n = shape.reduce(1, *)
        for flat in 0..<n {
            var idx = [Int](repeating: 0, count: r), rem = flat
            for d in stride(from: r - 1, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
            out.append(Double(f(a.data[index(a, idx)], b.data[index(b, idx)])))
        }
        return (out, shape)
    }

    func testBroadcastingAddMul() {
        let pairs: [([Int], [Int])] = [
            ([2, 3, 4, 5], [2, 3, 4, 5]), ([2, 3, 4, 5], [3, 1, 1]), ([2, 3, 1, 1], [2, 3, 4, 5]),
            ([2, 1, 4, 5], [2, 3, 4, 5]), ([2, 1, 4, 1], [1, 3, 1, 5]), ([1], [2, 3]), ([4, 1], [3]), ([], [2, 2]),
        ]
        for (i, (sa, sb)) in pairs.enumerated() {
            let a = random(sa, seed: UInt64(200 + i)), b = random(sb, seed: UInt64(300 + i))
            let (sum, shape) = referenceBroadcast(a, b, +)
            assertClose(Kernels.add(a, b), sum, shape: shape, atol: 0, rtol: 0)
            let (prod, _) = referenceBroadcast(a, b, *)
            assertClose(Kernels.mul(a, b), prod, shape: shape, atol: 0, rtol: 0)
        }
        XCTAssertNil(Kernels.broadcastShape([2, 3], [3, 2]))
    }

    func testConcat() {
        let a = random([2, 1, 3], seed: 40), b = random([2, 2, 3], seed: 41)
        let got = Kernels.concat([a, b], dim: 1)
        var want = [Double]()
        for i in 0..<2 {
            want += a.data[(i * 3)..<(i * 3 + 3)].map(Double.init)
            want += b.data[(i * 6)..<(i * 6 + 6)].map(Double.init)
        }
        assertClose(got, want, shape: [2, 3, 3], atol: 0, rtol: 0)
        assertClose(Kernels.concat([a, a], dim: 0), (a.data + a.data).map(Double.init), shape: [4, 1, 3], atol: 0, rtol: 0)
        let last = Kernels.concat([a, a], dim: 2)
        XCTAssertEqual(last.shape, [2, 1, 6])
        XCTAssertEqual(Array(last.data[3..<6]), Array(a.data[0..<3]))
    }

    func testChannelMeanAndMax() {
        let x = random([2, 5, 3, 4], seed: 42)
        var mean = [Double](), mx = [Double]()
        for n in 0..<2 { for s in 0..<12 {
            let vals = (0..<5).map { Double(x.data[(n * 5 + $0) * 12 + s]) }
            mean.append(vals.reduce(0, +) / 5); mx.append(vals.max()!)
        }}
        assertClose(Kernels.meanOverChannels(x), mean, shape: [2, 1, 3, 4])
        assertClose(Kernels.maxOverChannels(x), mx, shape: [2, 1, 3, 4], atol: 0, rtol: 0)
        // Large enough to take the parallel path.
        let big = random([2, 8, 64, 64], seed: 43)
        let bm = Kernels.maxOverChannels(big)
        for i in stride(from: 0, to: 2 * 4096, by: 97) {
            let n = i / 4096, s = i % 4096
            XCTAssertEqual(bm.data[i], (0..<8).map { big.data[(n * 8 + $0) * 4096 + s] }.max()!)
        }
    }

    // MARK: attention

    func referenceAttention(q: [[Double]], k: [[Double]], v: [[Double]], scale: Double) -> [[Double]] {
        q.map { qi in
            let s = k.map { kj in zip(qi, kj).map(*).reduce(0, +) * scale }
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let z = e.reduce(0, +)
            return (0..<v[0].count).map { d in (0..<v.count).map { e[$0] / z * v[$0][d] }.reduce(0, +) }
        }
    }

    /// Multi-head attention over a fused [B, N, 3C] qkv tensor (q, k, v side by side), scale 1/√headDim.
    func referenceFusedAttention(_ qkv: FloatTensor, batch b: Int, tokens n: Int, heads: Int, headDim hd: Int) -> [Double] {
        let c = heads * hd
        var want = [Double](repeating: 0, count: b * n * c)
        for bi in 0..<b { for h in 0..<heads {
            func part(_ which: Int) -> [[Double]] {
                (0..<n).map { t in (0..<hd).map { d in Double(qkv.data[(bi * n + t) * 3 * c + which * c + h * hd + d]) } }
            }
            let o = referenceAttention(q: part(0), k: part(1), v: part(2), scale: 1 / Double(hd).squareRoot())
            for t in 0..<n { for d in 0..<hd { want[(bi * n + t) * c + h * hd + d] = o[t][d] } }
        }}
        return want
    }

    func testFusedQKVAttentionMatchesReference() {
        // (batch, tokens, heads, head width, seed). The second has enough (batch, head) pairs and work per pair to
        // run on several workers; its head width 7 and 37 tokens exercise the softmax's vector tail.
        for (b, n, heads, hd, seed) in [(2, 5, 3, 4, 50), (3, 37, 3, 7, 60)] as [(Int, Int, Int, Int, UInt64)] {
            let c = heads * hd
            let qkv = random([b, n, 3 * c], seed: seed)
            let got = Kernels.multiHeadAttention(qkv: qkv, heads: heads)
            let want = referenceFusedAttention(qkv, batch: b, tokens: n, heads: heads, headDim: hd)
            assertClose(got, want, shape: [b, n, c])
        }
    }

    func testSeparateQKVAttentionWithDifferentKeyLength() {
        let (b, nq, nk, heads, hd) = (1, 3, 6, 2, 4)
        let c = heads * hd
        let q = random([b, nq, c], seed: 51), k = random([b, nk, c], seed: 52), v = random([b, nk, c], seed: 53)
        let got = Kernels.multiHeadAttention(q: q, k: k, v: v, heads: heads, scale: 0.3)
        var want = [Double](repeating: 0, count: nq * c)
        for h in 0..<heads {
            func rows(_ t: FloatTensor, _ count: Int) -> [[Double]] {
                (0..<count).map { i in (0..<hd).map { Double(t.data[i * c + h * hd + $0]) } }
            }
            let o = referenceAttention(q: rows(q, nq), k: rows(k, nk), v: rows(v, nk), scale: 0.3)
            for t in 0..<nq { for d in 0..<hd { want[t * c + h * hd + d] = o[t][d] } }
        }
        assertClose(got, want, shape: [b, nq, c])
    }

    // MARK: conversion

    func testFloatTensorRoundTripsThroughTensor() {
        let f = random([2, 3], seed: 60)
        XCTAssertEqual(FloatTensor(f.tensor), f)
        let half = f.tensor.converted(to: .float16)
        let back = FloatTensor(half)
        XCTAssertEqual(back.shape, [2, 3])
        for (a, b) in zip(back.data, f.data) { XCTAssertEqual(a, b, accuracy: 1e-3) }
        XCTAssertEqual(FloatTensor(Tensor(shape: [0, 3], floats: [])).count, 0)
    }
}
