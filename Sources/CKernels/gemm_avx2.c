/* The packed Linear GEMM of gemm_avx512.c for CPUs with AVX2 and FMA but no AVX-512 (AMD Zen 2/3, Intel
   Haswell…Alder Lake client cores): Y = A · Wᵀ (+ bias, + residual), on the same packed weight (panels of 32
   output features, weights_pack_linear_weight) and the same scratch copy of the input (K blocks <= 256, row
   stride WEIGHTS_INPUT_STRIDE), so a layer's packed weight serves either kernel.

   Why: on a Zen 3 VM OpenBLAS 0.3.21's Haswell sgemm repacks the whole weight through its transposing copy on
   every call, which for ViT shapes (65–1576 tokens against 768–4096-wide weights) costs as much as the arithmetic
   at small m; see README ("Packed GEMM on AVX2") for the measurements.

   Micro-kernel: 16 ymm registers allow 6 rows × 16 columns of accumulators (12 registers), two weight registers
   and one broadcast. A 32-wide panel is therefore run as two 16-column halves: per K block, for each panel, for
   each half, every row tile reads the half's K block (kc cache lines of 64 bytes, 16 KB at kc = 256, within Zen 3's
   32 KB L1) while the input block stays in L2. Row tiles have nearly equal heights <= 6 (65 rows → 11 tiles of
   6 or 5). As in the AVX-512 kernel, C is written (accumulator + bias) at the first K block and accumulated at
   later ones, the residual added at the last one, columns past n masked at the loads and stores. */
#include "ckernels.h"
#include "gemm_blocking.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define PW WEIGHTS_PANEL_WIDTH
#define AS WEIGHTS_INPUT_STRIDE
#define MR2_MAX 6

int weights_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

/* Accumulates a[i][k] · b[k][0..<16] (b at stride PW per k) into acc[i][0..<2] for k in k0..<k1, i < MR. */
#define TILE2_STEPS(k0, k1) \
    _Pragma("clang loop unroll_count(4)") \
    for (long k = (k0); k < (k1); k++) { \
        __m256 b0 = _mm256_load_ps(b + k * PW), b1 = _mm256_load_ps(b + k * PW + 8); \
        for (int i = 0; i < MR; i++) { \
            __m256 ai = _mm256_broadcast_ss(a + i * AS + k); \
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]); \
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]); \
        } \
    }

/* One MR × 16 tile over a K block of kc: `a` is the tile's first row in the scratch copy, `b` the half panel's K
   block (stride PW), `c` the tile's first output (stride ldc), m0/m1 the lane masks of columns 0..<8 and 8..<16,
   `pf`/`pf_lines` this tile's share of the next half panel's prefetch (lines PW floats apart). */
static inline __attribute__((always_inline)) AVX2
void tile2(const int MR, long kc, const float *a, const float *b, float *c, long ldc, __m256i m0, __m256i m1,
           int first, int last, const float *bias, const float *res, const float *pf, long pf_lines) {
    __m256 acc[MR2_MAX][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm256_setzero_ps(); acc[i][1] = _mm256_setzero_ps(); }
    for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    if (pf_lines) {
        gemm_prefetch_plan plan = gemm_plan_prefetch(kc, pf_lines);
        long l = 0, k0 = 0;
        for (long ch = 0; ch < plan.chunks; ch++) {
            for (long e = l + plan.per < pf_lines ? l + plan.per : pf_lines; l < e; l++)
                _mm_prefetch((const char *)(pf + l * PW), _MM_HINT_T1);
            long k1 = ch + 1 == plan.chunks ? kc : k0 + plan.every;
            TILE2_STEPS(k0, k1)
            k0 = k1;
        }
    } else {
        TILE2_STEPS(0, kc)
    }
    /* vmaskmovps stores are slow on AMD (microcoded), so full-width halves use plain loads and stores. */
    const int full = _mm256_movemask_ps(_mm256_castsi256_ps(m1)) == 0xFF;
#define LD(p, m) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), (m)))
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (first && bias) { bias0 = LD(bias, m0); bias1 = LD(bias + 8, m1); }
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        __m256 t0, t1;
        if (first) {
            t0 = _mm256_add_ps(acc[i][0], bias0);
            t1 = _mm256_add_ps(acc[i][1], bias1);
        } else {
            t0 = _mm256_add_ps(LD(ci, m0), acc[i][0]);
            t1 = _mm256_add_ps(LD(ci + 8, m1), acc[i][1]);
        }
        if (last && res) {
            const float *ri = res + i * ldc;
            t0 = _mm256_add_ps(LD(ri, m0), t0);
            t1 = _mm256_add_ps(LD(ri + 8, m1), t1);
        }
        if (full) {
            _mm256_storeu_ps(ci, t0);
            _mm256_storeu_ps(ci + 8, t1);
        } else {
            _mm256_maskstore_ps(ci, m0, t0);
            _mm256_maskstore_ps(ci + 8, m1, t1);
        }
    }
#undef LD
}

typedef void (*tile2_fn)(long, const float *, const float *, float *, long, __m256i, __m256i, int, int,
                         const float *, const float *, const float *, long);

#define TILE2(R) \
    static AVX2 void tile2_##R(long kc, const float *a, const float *b, float *c, long ldc, __m256i m0, \
                               __m256i m1, int first, int last, const float *bias, const float *res, \
                               const float *pf, long pf_lines) { \
        tile2(R, kc, a, b, c, ldc, m0, m1, first, last, bias, res, pf, pf_lines); \
    }
TILE2(1) TILE2(2) TILE2(3) TILE2(4) TILE2(5) TILE2(6)

static const tile2_fn tiles2[MR2_MAX + 1] = { 0, tile2_1, tile2_2, tile2_3, tile2_4, tile2_5, tile2_6 };

/* Lane mask for columns lo..<lo+8 of a half panel holding `cols` valid columns (all lanes when cols >= lo + 8). */
static AVX2 __m256i lane_mask(long cols, long lo) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    long valid = cols - lo;
    if (valid > 8) valid = 8;
    if (valid < 0) valid = 0;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), lanes);
}

AVX2
void weights_sgemm_packed_avx2(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                               long p1, const float *bias, const float *residual, float *c, long ldc,
                               float *scratch) {
    long kcBase = gemm_k_block(k);
    gemm_row_tiles rt = gemm_split_rows(m, MR2_MAX);
    for (long k0 = 0; k0 < k; k0 += kcBase) {
        long kc = k - k0 < kcBase ? k - k0 : kcBase;
        /* The next half panel's K block (kc lines) is prefetched into L2 while this one runs, spread over the row
           tiles, at least one line per 4 k steps per tile. */
        long pfTotal = kc, pfShare = gemm_prefetch_share(pfTotal, rt.count, (kc + 3) / 4);
        int first = k0 == 0, last = k0 + kc == k;
        gemm_copy_input_block(scratch, a, lda, m, k0, kc);
        for (long p = p0; p < p1; p++) {
            long cols = n - p * PW < PW ? n - p * PW : PW;
            const float *panel = packed + p * k * PW + k0 * PW;
            for (long h = 0; h < 2; h++) {
                long hcols = cols - h * 16;
                if (hcols <= 0) break;
                __m256i m0 = lane_mask(hcols, 0), m1 = lane_mask(hcols, 8);
                const float *b = panel + h * 16;
                /* The next half panel: the other half of this panel, or the first half of the next one. */
                const float *nextB = h == 0 ? panel + 16 : (p + 1 < p1 ? panel + k * PW : 0);
                if (h == 0 && cols <= 16) nextB = p + 1 < p1 ? panel + k * PW : 0;
                const float *bp = bias ? bias + p * PW + h * 16 : 0;
                long r = 0, next = 0;
                for (long t = 0; t < rt.count; t++) {
                    long mr = rt.height + (t < rt.taller);
                    long lines = 0;
                    if (nextB && next < pfTotal) lines = pfTotal - next < pfShare ? pfTotal - next : pfShare;
                    tiles2[mr](kc, scratch + r * AS, b, c + r * ldc + p * PW + h * 16, ldc, m0, m1, first, last, bp,
                               residual ? residual + r * ldc + p * PW + h * 16 : 0,
                               nextB ? nextB + next * PW : 0, lines);
                    next += lines;
                    r += mr;
                }
            }
        }
    }
}

#else

int weights_cpu_has_avx2_fma(void) { return 0; }

void weights_sgemm_packed_avx2(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                               long p1, const float *bias, const float *residual, float *c, long ldc,
                               float *scratch) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)p0; (void)p1; (void)bias; (void)residual;
    (void)c; (void)ldc; (void)scratch;
    __builtin_trap();   /* callers check weights_cpu_has_avx2_fma() first */
}
#endif
