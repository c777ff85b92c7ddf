#ifndef WEIGHTS_CZIP_SHIM_H
#define WEIGHTS_CZIP_SHIM_H
// zlib: inflate for deflated zip members and crc32 for CRC checks. The zip directory itself is parsed in Swift
// (Checkpoints/ZipDirectory.swift) so that every path reads one directory.
#include <zlib.h>
#endif
