// Decompression of tarballs ahead of libarchive, with integrity checks.
//
// libarchive's own gzip reader does not check the CRC-32 of the data, and
// its xz reader uses one thread. This layer decompresses gzip (zlib, which
// checks each member's CRC-32 and length), xz (liblzma's multithreaded
// decoder, which checks the blocks' checksums) and zstd (libzstd, which
// checks frame checksums when present) and fails on corrupt, truncated or
// trailing data. Other input (an uncompressed tar, bzip2, lz4) passes
// through unchanged for libarchive to recognize.
#pragma once

#include <memory>

#include "common/status.h"
#include "ingest/persistent_store.h"

namespace kvfs::ingest {

// Wraps `in` in a reader of its decompressed contents (see the file
// comment). `threads` is for xz (0: one per CPU). Read() fails with EINVAL
// and a message naming the format on bad compressed data; size() is the
// size of `in`.
Status OpenDecompressor(std::unique_ptr<ObjectReader> in, int threads,
                        std::unique_ptr<ObjectReader>* out);

}  // namespace kvfs::ingest
