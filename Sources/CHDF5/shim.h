#ifndef WEIGHTS_CHDF5_SHIM_H
#define WEIGHTS_CHDF5_SHIM_H
#include <hdf5.h>
#include <zlib.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

// HDF5's H5T_NATIVE_* and H5P_DEFAULT-style macros expand to calls or globals that
// Swift cannot import; expose them as functions.
static inline hid_t weights_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t weights_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t weights_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t weights_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t weights_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t weights_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t weights_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t weights_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t weights_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t weights_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t weights_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t weights_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t weights_h5t_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t weights_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t weights_h5t_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t weights_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t weights_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t weights_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t weights_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t weights_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t weights_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t weights_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t weights_h5s_all(void) { return H5S_ALL; }
static inline void weights_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
// Added for the HDF5 reader/writer (Sources/Checkpoints/HDF5*.swift).
static inline hid_t weights_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t weights_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t weights_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned weights_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned weights_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline size_t weights_h5t_variable(void) { return H5T_VARIABLE; }

// Added for the HDF5 isolation (Sources/Checkpoints/HDF5Isolation.swift, HDF5Chunks.swift).
static inline hsize_t weights_haddr_undef(void) { return HADDR_UNDEF; }

// The number of bytes a zlib stream (what HDF5's deflate filter writes) inflates to, counted without keeping them;
// limit + 1 once it exceeds `limit`; -1 if the stream is corrupt or ends early. Mirrors libhdf5's own decoding
// (inflateInit, inflate until Z_STREAM_END).
static inline long long weights_inflated_size(const unsigned char *src, size_t n, unsigned long long limit) {
    z_stream z = {0};
    unsigned char scratch[65536];
    if (inflateInit(&z) != Z_OK) return -1;
    z.next_in = (unsigned char *)src;
    z.avail_in = (uInt)(n > 0xFFFFFFFFu ? 0xFFFFFFFFu : n);
    unsigned long long total = 0;
    for (;;) {
        z.next_out = scratch;
        z.avail_out = sizeof scratch;
        int status = inflate(&z, Z_NO_FLUSH);
        total += sizeof scratch - z.avail_out;
        if (total > limit) { inflateEnd(&z); return (long long)limit + 1; }
        if (status == Z_STREAM_END) break;
        if (status != Z_OK) { inflateEnd(&z); return -1; }
    }
    inflateEnd(&z);
    return (long long)total;
}

// In a forked child: closes every descriptor from 3 up except `keep1` and `keep2` (so that the child holds no
// copy of another child's pipe ends). close_range where the kernel has it, else a walk over /proc/self/fd.
static inline void weights_close_other_fds(int keep1, int keep2) {
    int lo = keep1 < keep2 ? keep1 : keep2, hi = keep1 < keep2 ? keep2 : keep1;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, (unsigned)(lo - 1), 0u) == 0 || lo <= 3) {
        int ok = 1;
        if (hi - lo > 1 && syscall(SYS_close_range, (unsigned)(lo + 1), (unsigned)(hi - 1), 0u) != 0) ok = 0;
        if (ok && syscall(SYS_close_range, (unsigned)(hi + 1), ~0u, 0u) == 0) return;
    }
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    int dfd = dirfd(d);
    struct dirent *e;
    int fds[4096]; int count = 0;
    while ((e = readdir(d)) != NULL && count < 4096) {
        int fd = atoi(e->d_name);
        if (fd >= 3 && fd != keep1 && fd != keep2 && fd != dfd) fds[count++] = fd;
    }
    closedir(d);
    for (int i = 0; i < count; i++) close(fds[i]);
}
// A file-access property list that opens `len` bytes at `buf` as a read-only HDF5 file image (the core driver, no
// backing store), without copying them: the image callbacks hand libhdf5 the caller's buffer wherever it would
// allocate and copy one, refuse to grow it, and never free it. The caller keeps `buf` alive and unchanged while the
// file is open. Returns a negative id on failure. (For `.keras` archives: the inner model.weights.h5 is opened from
// the archive's mapping or from the inflated member, in the HDF5 child process; see Sources/Checkpoints/KerasArchive.swift.)
typedef struct { const void *buf; size_t len; int refs; } weights_h5_image_t;

static void *weights_h5_image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    weights_h5_image_t *im = (weights_h5_image_t *)udata;
    (void)op;
    return size == im->len ? (void *)im->buf : NULL;
}
static void *weights_h5_image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
    weights_h5_image_t *im = (weights_h5_image_t *)udata;
    (void)op;
    // Only the "copy" of the image onto itself: anything else would mean libhdf5 wants a private copy.
    return (dest == src && dest == im->buf && size <= im->len) ? dest : NULL;
}
static void *weights_h5_image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)ptr; (void)size; (void)op; (void)udata;
    return NULL;
}
static herr_t weights_h5_image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    (void)ptr; (void)op; (void)udata;
    return 0;
}
static void *weights_h5_image_udata_copy(void *udata) {
    ((weights_h5_image_t *)udata)->refs += 1;
    return udata;
}
static herr_t weights_h5_image_udata_free(void *udata) {
    weights_h5_image_t *im = (weights_h5_image_t *)udata;
    if (--im->refs == 0) free(im);
    return 0;
}

static inline hid_t weights_h5_image_fapl(const void *buf, size_t len) {
    if (buf == NULL || len == 0) return -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    weights_h5_image_t *im = (weights_h5_image_t *)malloc(sizeof *im);
    if (!im) { H5Pclose(fapl); return -1; }
    im->buf = buf; im->len = len; im->refs = 1;
    H5FD_file_image_callbacks_t cb = {
        weights_h5_image_malloc, weights_h5_image_memcpy, weights_h5_image_realloc, weights_h5_image_free,
        weights_h5_image_udata_copy, weights_h5_image_udata_free, im
    };
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0) {
        weights_h5_image_udata_free(im); H5Pclose(fapl); return -1;
    }
    // libhdf5 took its own reference (udata_copy) when it kept udata; drop ours then (else keep it: a few bytes).
    if (im->refs > 1) weights_h5_image_udata_free(im);
    if (H5Pset_file_image(fapl, (void *)buf, len) < 0) { H5Pclose(fapl); return -1; }
    return fapl;
}
#endif
