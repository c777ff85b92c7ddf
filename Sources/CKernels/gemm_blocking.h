/* The blocking arithmetic both packed GEMM kernels share (gemm_avx512.c, gemm_avx2.c): plain scalar C, inlined
   into each kernel's target-specific code. Not part of the module's public header. */
#ifndef WEIGHTS_GEMM_BLOCKING_H
#define WEIGHTS_GEMM_BLOCKING_H
#include <string.h>
#include "ckernels.h"

/* K blocks of nearly equal length <= WEIGHTS_MAX_K_BLOCK (1024 → 4 × 256, 17 → 17): the length of all but the last. */
static inline long gemm_k_block(long k) {
    long kblocks = (k + WEIGHTS_MAX_K_BLOCK - 1) / WEIGHTS_MAX_K_BLOCK;
    return (k + kblocks - 1) / kblocks;
}

/* Row tiles of nearly equal height <= mr_max: `count` tiles, the first `taller` of them one row taller than `height`. */
typedef struct { long count, height, taller; } gemm_row_tiles;
static inline gemm_row_tiles gemm_split_rows(long m, long mr_max) {
    long count = (m + mr_max - 1) / mr_max;
    gemm_row_tiles t = { count, m / count, m % count };
    return t;
}

/* Copies columns k0 ..< k0 + kc of the m input rows into the scratch matrix (row stride WEIGHTS_INPUT_STRIDE). */
static inline void gemm_copy_input_block(float *scratch, const float *a, long lda, long m, long k0, long kc) {
    for (long i = 0; i < m; i++)
        memcpy(scratch + i * WEIGHTS_INPUT_STRIDE, a + i * lda + k0, (size_t)kc * sizeof(float));
}

/* Each row tile's share of the next panel's prefetch (`total` cache lines over `tiles` tiles), but at least
   `minimum` lines (never more than total), so the prefetch finishes within the first few tiles. */
static inline long gemm_prefetch_share(long total, long tiles, long minimum) {
    long share = (total + tiles - 1) / tiles;
    if (share < minimum) share = minimum < total ? minimum : total;
    return share;
}

/* How a tile spreads its `lines` prefetches over its kc k steps: `chunks` runs of `every` k steps (the last run
   takes the rest), `per` prefetches before each, at least 4 k steps per run. */
typedef struct { long chunks, per, every; } gemm_prefetch_plan;
static inline gemm_prefetch_plan gemm_plan_prefetch(long kc, long lines) {
    long chunks = kc / 4 < lines ? kc / 4 : lines;
    if (chunks < 1) chunks = 1;
    gemm_prefetch_plan p = { chunks, (lines + chunks - 1) / chunks, kc / chunks };
    return p;
}
#endif
