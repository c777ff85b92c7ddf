/* A single-precision GEMM for Linear layers, Y = A · Wᵀ (+ bias, + residual), on AVX-512F.

   Why not OpenBLAS: for the shapes a ViT runs (65–1576 tokens against 768–4096-wide weights) OpenBLAS 0.3.21's
   SkylakeX sgemm reached ~80 % of MKL's speed on an Ice Lake Xeon, and every call repacks the whole weight
   through its transposing copy. A Linear layer's weight does not change between forward passes, so here it is
   packed once (weights_pack_linear_weight, cached by the layer) into the layout the micro-kernel reads, and each
   call only copies its input rows.

   Layout and blocking:
   - Packed weight: panels of 32 output features; panel p is k rows of 32 floats, so a micro-kernel step loads
     two zmm registers of consecutive features for one k, and a K block of a panel is one contiguous run.
   - Input: each K block (<= 256) of the m input rows is copied into a scratch matrix with row stride 272 floats.
     The stride is a compile-time constant, so the micro-kernel addresses all its rows from one pointer with
     constant displacements; and 272 floats = 17 cache lines, so the rows fall into different L1 sets (the rows
     of an [m, 1024] input are 4 KiB apart, which maps all of them onto one set).
   - Micro-kernel: up to 14 rows × 32 columns of accumulators (28 zmm), each step two weight loads and one
     broadcast per row (one load shared by the row's two FMAs). Rows of a call are cut into tiles of
     nearly equal height (65 rows → 5 × 13), not 14s and a short remainder.
   - Loop order per K block: panels outside, row tiles inside, so one panel's 32 KB K block stays in L1 while
     every row tile reads it; the input block (m × 1 KB) stays in L2.
   - C is written at the first K block (accumulator + bias) and accumulated at later ones; the residual is added
     at the last one, as PyTorch rounds `residual + linear(x)`. Columns past n in the last panel are computed on
     the zero padding and masked off at the stores.

   Only the functions marked AVX512 use AVX-512; they are compiled for it by a target attribute, so the rest of
   the package needs no special flags, and callers check weights_cpu_has_avx512f() before calling them. */
#include "ckernels.h"
#include "gemm_blocking.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define PW WEIGHTS_PANEL_WIDTH
#define AS WEIGHTS_INPUT_STRIDE
#define MR_MAX 14

int weights_cpu_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

size_t weights_packed_weight_count(long n, long k) {
    return (size_t)((n + PW - 1) / PW) * PW * (size_t)k;
}

void weights_pack_linear_weight(const float *w, long n, long k, long p0, long p1, float *packed) {
    enum { KB = 16 };   /* 32 weight rows × 16 k: 32 source lines in, 2 KB of panel out, both within L1 */
    for (long p = p0; p < p1; p++) {
        float *dst = packed + p * k * PW;
        long rows = n - p * PW < PW ? n - p * PW : PW;
        for (long k0 = 0; k0 < k; k0 += KB) {
            long kb = k - k0 < KB ? k - k0 : KB;
            for (long j = 0; j < PW; j++) {
                if (j < rows) {
                    const float *src = w + (p * PW + j) * k + k0;
                    for (long kk = 0; kk < kb; kk++) dst[(k0 + kk) * PW + j] = src[kk];
                } else {
                    for (long kk = 0; kk < kb; kk++) dst[(k0 + kk) * PW + j] = 0;
                }
            }
        }
    }
}

/* Accumulates a[i][k] · b[k][0..<32] into acc[i][0..<2] for k in k0..<k1, i < MR. */
#define TILE_STEPS(k0, k1) \
    _Pragma("clang loop unroll_count(4)") \
    for (long k = (k0); k < (k1); k++) { \
        __m512 b0 = _mm512_load_ps(b + k * PW), b1 = _mm512_load_ps(b + k * PW + 16); \
        for (int i = 0; i < MR; i++) { \
            __m512 ai = _mm512_set1_ps(a[i * AS + k]); \
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]); \
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]); \
        } \
    }

/* One MR × 32 tile over a K block of kc: `a` is the tile's first row in the scratch copy (stride AS), `b` the
   panel's K block, `pf` the start of this tile's share of the next panel's prefetch and `pf_lines` its length in
   cache lines (0: none). first: C = acc + bias (bias may be NULL); else C += acc. last && res: C = res + C.
   Columns outside the masks m0 (0..<16) and m1 (16..<32) are neither read nor written. */
static inline __attribute__((always_inline)) AVX512
void tile(const int MR, long kc, const float *a, const float *b, float *c, long ldc, __mmask16 m0, __mmask16 m1,
          int first, int last, const float *bias, const float *res, const float *pf, long pf_lines) {
    __m512 acc[MR_MAX][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    /* The C tile is read (after the first K block) or at least written at the end, from L2, L3 or memory for
       large m: start fetching it now. Also for the first K block: the stores would otherwise wait for their
       lines at the end of the tile (~3 % at 1576 rows). */
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    if (pf_lines) {
        /* The tile's share of the next panel's prefetch (see weights_sgemm_packed_avx512): pf_lines cache lines
           from pf, issued a few at a time between runs of >= 4 k steps, so they trickle out over the whole tile. */
        gemm_prefetch_plan plan = gemm_plan_prefetch(kc, pf_lines);
        long l = 0, k0 = 0;
        for (long ch = 0; ch < plan.chunks; ch++) {
            for (long e = l + plan.per < pf_lines ? l + plan.per : pf_lines; l < e; l++)
                _mm_prefetch((const char *)(pf + l * 16), _MM_HINT_T1);
            long k1 = ch + 1 == plan.chunks ? kc : k0 + plan.every;
            TILE_STEPS(k0, k1)
            k0 = k1;
        }
    } else {
        TILE_STEPS(0, kc)
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (first && bias) { bias0 = _mm512_maskz_loadu_ps(m0, bias); bias1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        __m512 t0, t1;
        if (first) {
            t0 = _mm512_add_ps(acc[i][0], bias0);
            t1 = _mm512_add_ps(acc[i][1], bias1);
        } else {
            t0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), acc[i][0]);
            t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), acc[i][1]);
        }
        if (last && res) {
            const float *ri = res + i * ldc;
            t0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ri), t0);
            t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ri + 16), t1);
        }
        _mm512_mask_storeu_ps(ci, m0, t0);
        _mm512_mask_storeu_ps(ci + 16, m1, t1);
    }
}

typedef void (*tile_fn)(long, const float *, const float *, float *, long, __mmask16, __mmask16, int, int,
                        const float *, const float *, const float *, long);

#define TILE(R) \
    static AVX512 void tile##R(long kc, const float *a, const float *b, float *c, long ldc, __mmask16 m0, \
                               __mmask16 m1, int first, int last, const float *bias, const float *res, \
                               const float *pf, long pf_lines) { \
        tile(R, kc, a, b, c, ldc, m0, m1, first, last, bias, res, pf, pf_lines); \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7)
TILE(8) TILE(9) TILE(10) TILE(11) TILE(12) TILE(13) TILE(14)

static const tile_fn tiles[MR_MAX + 1] = {
    0, tile1, tile2, tile3, tile4, tile5, tile6, tile7, tile8, tile9, tile10, tile11, tile12, tile13, tile14,
};

AVX512
void weights_sgemm_packed_avx512(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                                 long p1, const float *bias, const float *residual, float *c, long ldc,
                                 float *scratch) {
    long kcBase = gemm_k_block(k);
    gemm_row_tiles rt = gemm_split_rows(m, MR_MAX);
    for (long k0 = 0; k0 < k; k0 += kcBase) {
        long kc = k - k0 < kcBase ? k - k0 : kcBase;
        /* The next panel's K block (2·kc cache lines) is prefetched into L2 while this panel runs, spread evenly
           over the panel's row tiles, but at least one line per 2 k steps per tile (so it is done within the first
           4 tiles). Issuing it all in the first tile, two lines per k step, measured 2–5 % slower at 260–1576 rows
           (likely: weight lines from L3 or memory arrive slower than they are requested, so the prefetches hold
           the line-fill buffers the tile's own loads need; this VM exposes no counters to confirm it). */
        long pfTotal = 2 * kc, pfShare = gemm_prefetch_share(pfTotal, rt.count, (kc + 1) / 2);
        int first = k0 == 0, last = k0 + kc == k;
        gemm_copy_input_block(scratch, a, lda, m, k0, kc);
        for (long p = p0; p < p1; p++) {
            long cols = n - p * PW < PW ? n - p * PW : PW;
            __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
            __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
            const float *b = packed + p * k * PW + k0 * PW;
            const float *bp = bias ? bias + p * PW : 0;
            long r = 0, next = 0;
            for (long t = 0; t < rt.count; t++) {
                long mr = rt.height + (t < rt.taller);
                long lines = 0;
                if (p + 1 < p1 && next < pfTotal) lines = pfTotal - next < pfShare ? pfTotal - next : pfShare;
                tiles[mr](kc, scratch + r * AS, b, c + r * ldc + p * PW, ldc, m0, m1, first, last, bp,
                          residual ? residual + r * ldc + p * PW : 0, b + k * PW + next * 16, lines);
                next += lines;
                r += mr;
            }
        }
    }
}

#else
/* Other architectures: no AVX-512, so the kernel is never selected; the packing stays available (plain C). */

int weights_cpu_has_avx512f(void) { return 0; }

size_t weights_packed_weight_count(long n, long k) {
    return (size_t)((n + WEIGHTS_PANEL_WIDTH - 1) / WEIGHTS_PANEL_WIDTH) * WEIGHTS_PANEL_WIDTH * (size_t)k;
}

void weights_pack_linear_weight(const float *w, long n, long k, long p0, long p1, float *packed) {
    for (long p = p0; p < p1; p++)
        for (long kk = 0; kk < k; kk++)
            for (long j = 0; j < WEIGHTS_PANEL_WIDTH; j++) {
                long f = p * WEIGHTS_PANEL_WIDTH + j;
                packed[(p * k + kk) * WEIGHTS_PANEL_WIDTH + j] = f < n ? w[f * k + kk] : 0;
            }
}

void weights_sgemm_packed_avx512(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                                 long p1, const float *bias, const float *residual, float *c, long ldc,
                                 float *scratch) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)p0; (void)p1; (void)bias; (void)residual;
    (void)c; (void)ldc; (void)scratch;
    __builtin_trap();   /* callers check weights_cpu_has_avx512f() first */
}
#endif
