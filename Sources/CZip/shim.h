#ifndef WEIGHTS_CZIP_SHIM_H
#define WEIGHTS_CZIP_SHIM_H
// zlib: inflate for deflated zip members and crc32 for CRC checks. The zip directory itself is parsed in Swift
// (Checkpoints/ZipDirectory.swift) so that every path reads one directory.
#include <zlib.h>
#include <stddef.h>

// glibc's memrchr (a GNU extension, so not visible through Swift's Glibc module): the last byte c in s[0..<n], or
// NULL. ZipDirectory's end-of-central-directory search jumps between 'P' bytes with it.
static inline const void *weights_memrchr(const void *s, int c, size_t n) {
    extern void *memrchr(const void *, int, size_t);
    return memrchr(s, c, n);
}
#endif
