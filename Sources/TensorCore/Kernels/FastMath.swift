import CKernels

/// Vectorised float32 transcendental functions for the activation and softmax kernels (8 lanes at a time).
///
/// Accuracy (checked against Double in KernelTests.testFastMathAccuracy):
///   exp:  range reduction x = n·ln2 + r, degree-6 minimax polynomial on |r| ≤ ln2/2 (Cephes `expf` coefficients),
///         ≤ 2 ulp; inputs below −87.3 give 0, above 88.7 give +inf.
///   erfc: t·exp(−z² + P(t)), t = 1/(1 + |z|/2), the classic Chebyshev fit with fractional error < 1.2e-7 everywhere,
///         so GELU = ½·x·(1 + erf(x/√2)) is evaluated as ½·x·erfc(−x/√2) without cancellation for x < 0;
///         GELU error ≤ 1e-6 relative where |GELU(x)| ≥ 0.01 and ≤ 1e-8 absolute below (the float rounding of the
///         exp argument −z² limits it in the far negative tail).
///   tanh: odd polynomial for |x| < 0.625, 1 − 2/(e^{2|x|} + 1) otherwise; ≤ ~3 ulp.
///   sigmoid, silu: from e^(−|x|) (never overflows); relative error < 4e-7.
package enum FastMath {
    public typealias V = SIMD8<Float>

    /// Whether `Kernels.VectorFunction.gelu` and `Kernels.softmaxRow` run their AVX2 + FMA versions
    /// (CKernels/activations_avx2.c): when the CPU has both, unless a test switched them off to compare.
    nonisolated(unsafe) package static var avx2Kernels: Bool = weights_cpu_has_avx2_fma() != 0

    @inline(__always)
    public static func vabs(_ x: V) -> V {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: V.self)
    }

    /// e^x = 2^n · e^r for finite x in exp's range: n = round(x·log2 e) (the 1.5·2^23 trick: the sum's low
    /// mantissa bits hold n), r = x − n·ln2 in two steps, and a degree-7 polynomial for e^r. Returns (e^r, n).
    @inline(__always)
    static func expReduced(_ x: V) -> (V, SIMD8<Int32>) {
        let magic: Float = 12_582_912
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        return (p, unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000)
    }

    @inline(__always)
    public static func exp(_ x: V) -> V {
        let hi: Float = 88.72283, lo: Float = -87.33654
        var xc = x.replacing(with: V(repeating: hi), where: x .> hi)
        xc = xc.replacing(with: V(repeating: lo), where: xc .< lo)
        xc = xc.replacing(with: 0, where: x .!= x)  // NaN: computed as 0, restored below
        let (p, ni) = expReduced(xc)
        // 2^n from the exponent bits, split in two factors so n = 128 (x near the upper clamp) stays finite.
        let half = ni &>> 1
        let s1 = unsafeBitCast((half &+ 127) &<< 23, to: V.self)
        let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: V.self)
        var result = p * s1 * s2
        result = result.replacing(with: 0, where: x .< lo)
        result = result.replacing(with: .infinity, where: x .> hi)
        return result.replacing(with: x, where: x .!= x)  // NaN stays NaN
    }

    /// exp(x) for x ≤ 88 — the caller guarantees the bound (larger x overflow the scale) — with the same polynomial
    /// as `exp` but none of its overflow handling: one clamp, one scale. Gives 0 below −87.3 and keeps NaN.
    /// For arguments known to be non-positive (softmax after subtracting the maximum, erfc's e^(−z²)), where it is
    /// about three times as fast as `exp` on baseline x86-64 (every select costs several SSE2 instructions).
    @inline(__always)
    public static func expUpTo88(_ x: V) -> V {
        let lo: Float = -87.33654
        let (p, ni) = expReduced(x.replacing(with: V(repeating: lo), where: x .< lo))
        // −126 ≤ n ≤ 127 here, so 2^n is one normal float built from its exponent bits.
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: V.self)
        return (p * scale).replacing(with: 0, where: x .< lo)
    }

    /// erfc(z) for all z (uses erfc(−z) = 2 − erfc(z)).
    @inline(__always)
    public static func erfc(_ z: V) -> V {
        let a = vabs(z)
        let one = V(repeating: 1)
        let t = one / (one + a * 0.5)
        var p = V(repeating: 0.17087277)
        p = p * t - 0.82215223
        p = p * t + 1.48851587
        p = p * t - 1.13520398
        p = p * t + 0.27886807
        p = p * t - 0.18628806
        p = p * t + 0.09678418
        p = p * t + 0.37409196
        p = p * t + 1.00002368
        p = p * t - 1.26551223
        let r = t * expUpTo88(p - a * a)   // = erfc(|z|)/t ≤ 1, so the argument is at most about 0
        return r.replacing(with: V(repeating: 2) - r, where: z .< 0)
    }

    /// PyTorch's exact GELU: ½·x·(1 + erf(x/√2)) = ½·x·erfc(−x/√2).
    @inline(__always)
    public static func gelu(_ x: V) -> V {
        x * 0.5 * erfc(x * -0.70710678118654752)
    }

    @inline(__always)
    public static func sigmoid(_ x: V) -> V {
        // e = exp(−|x|) ≤ 1 never overflows (so the cheaper `expUpTo88` serves); σ(x) = 1/(1+e) for x ≥ 0,
        // e/(1+e) for x < 0. NaN stays NaN.
        let e = expUpTo88(-vabs(x))
        let inv = V(repeating: 1) / (V(repeating: 1) + e)
        return inv.replacing(with: e * inv, where: x .< 0)
    }

    /// SiLU (swish) as PyTorch evaluates it: x / (1 + e^(−x)). The exponent is capped at 88 (beyond it the result is
    /// below 1e-36 in magnitude and PyTorch's own value underflows towards −0), so the cheaper `expUpTo88` serves;
    /// +inf → +inf, −inf → NaN (PyTorch's −inf/inf), NaN → NaN.
    @inline(__always)
    public static func silu(_ x: V) -> V {
        let a = -x
        let e = expUpTo88(a.replacing(with: V(repeating: 88), where: a .> 88))
        let y = x / (V(repeating: 1) + e)
        return y.replacing(with: V(repeating: .nan), where: x .== -.infinity)
    }

    @inline(__always)
    public static func tanh(_ x: V) -> V {
        let a = vabs(x)
        let one = V(repeating: 1)
        // Large |x|: 1 − 2/(e^{2|x|} + 1), saturating to 1.
        let big = one - V(repeating: 2) / (exp(a + a) + one)
        // Small |x|: x + x³·P(x²) (Cephes tanhf).
        let z = x * x
        var p = V(repeating: -5.70498872745e-3)
        p = p * z + 2.06390887954e-2
        p = p * z - 5.37397155531e-2
        p = p * z + 1.33314422036e-1
        p = p * z - 3.33332819422e-1
        let small = x + x * z * p
        let signed = big.replacing(with: -big, where: x .< 0)
        return signed.replacing(with: small, where: a .< 0.625)
    }

    /// Applies `f` to `n` floats in place, 8 at a time (the tail through a padded vector).
    @inline(__always)
    public static func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V) -> V) {
        var i = 0
        let raw = UnsafeMutableRawPointer(p)
        while i + 8 <= n {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            raw.storeBytes(of: f(v), toByteOffset: i * 4, as: V.self)
            i += 8
        }
        if i < n {
            var v = V(repeating: 0)
            for j in 0..<(n - i) { v[j] = p[i + j] }
            let r = f(v)
            for j in 0..<(n - i) { p[i + j] = r[j] }
        }
    }
}
