/* GELU (PyTorch's exact form) and the softmax row on AVX2 + FMA: the same approximations as FastMath.gelu and
   Kernels.softmaxRow (Swift), 8 lanes per instruction instead of the two SSE halves the Swift SIMD8 code compiles
   to on baseline x86-64.

   gelu(x) = ½·x·erfc(−x/√2); erfc(z) = t·exp(−z² + P(t)) for z ≥ 0 with t = 1/(1 + z/2) (the classic Chebyshev fit,
   fractional error < 1.2e-7), erfc(−z) = 2 − erfc(z); exp by range reduction to |r| ≤ ln2/2 and Cephes' expf
   polynomial, the argument being ≤ 0 here (so no overflow handling), 0 below −87.3. NaN stays NaN. The FMA
   contractions round differently from the Swift version by an ulp or so; both stay within the documented 1e-6. */
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) AVX2 __m256 exp_upto88(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f), magic = _mm256_set1_ps(12582912.0f);
    __m256 below = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 xc = _mm256_max_ps(lo, x);   /* NaN x: max returns its second operand, so NaN propagates to the result */
    __m256 shifted = _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(below, _mm256_mul_ps(p, scale));
}

static inline __attribute__((always_inline)) AVX2 __m256 gelu8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(-0.70710678118654752f));
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(0.5f), one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 r = _mm256_mul_ps(t, exp_upto88(_mm256_fnmadd_ps(a, a, p)));   /* erfc(|z|) */
    __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    r = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_set1_ps(2.0f), r), neg);
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), r);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    return _mm256_blendv_ps(y, x, nan);
}

AVX2 void weights_gelu_avx2(float *p, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, gelu8(_mm256_loadu_ps(p + i)));
    if (i < n) {
        float tail[8] = {0};
        memcpy(tail, p + i, (size_t)(n - i) * sizeof(float));
        __m256 y = gelu8(_mm256_loadu_ps(tail));
        _mm256_storeu_ps(tail, y);
        memcpy(p + i, tail, (size_t)(n - i) * sizeof(float));
    }
}

/* Softmax of row[0..<n] in place, as Kernels.softmaxRow: the maximum ignoring NaN (a NaN then makes every output
   NaN through exp), an all −inf row gives NaN (0/0) as in PyTorch, exp(x − max) stored with the running sum, then
   scaled by 1/sum. */
AVX2 void weights_softmax_row_avx2(float *row, long n) {
    long body = n & ~7L, i;
    __m256 mv = _mm256_set1_ps(-__builtin_inff());
    for (i = 0; i < body; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(row + i), mv);   /* NaN x: keeps mv */
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float m = lanes[0];
    for (int j = 1; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
    for (i = body; i < n; i++) m = row[i] > m ? row[i] : m;
    if (m == -__builtin_inff()) m = 0;
    __m256 mb = _mm256_set1_ps(m), sv = _mm256_setzero_ps();
    for (i = 0; i < body; i += 8) {
        __m256 e = exp_upto88(_mm256_sub_ps(_mm256_loadu_ps(row + i), mb));
        _mm256_storeu_ps(row + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    if (body < n) {
        float tail[8];
        for (int j = 0; j < 8; j++) tail[j] = -__builtin_inff();
        memcpy(tail, row + body, (size_t)(n - body) * sizeof(float));
        __m256 e = exp_upto88(_mm256_sub_ps(_mm256_loadu_ps(tail), mb));
        _mm256_storeu_ps(tail, e);
        memcpy(row + body, tail, (size_t)(n - body) * sizeof(float));
        sv = _mm256_add_ps(sv, e);
    }
    _mm256_storeu_ps(lanes, sv);
    float sum = 0;
    for (int j = 0; j < 8; j++) sum += lanes[j];
    float inv = 1 / sum;
    __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i < body; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), iv));
    for (i = body; i < n; i++) row[i] *= inv;
}

#else
void weights_gelu_avx2(float *p, long n) { (void)p; (void)n; __builtin_trap(); }
void weights_softmax_row_avx2(float *row, long n) { (void)row; (void)n; __builtin_trap(); }
#endif
