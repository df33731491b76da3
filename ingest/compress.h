// Compression of tarballs written to the persistent store: the counterpart
// of decompress.h. gzip (zlib, with the gzip header and CRC-32), zstd
// (libzstd, with frame checksums) and xz (liblzma, CRC-64 checks, several
// threads) streams, or none.
#pragma once

#include <memory>
#include <string_view>

#include "common/status.h"
#include "ingest/persistent_store.h"

namespace kvfs::ingest {

// Writes the compressed form of the bytes it is given to an ObjectWriter.
// Not thread-safe.
class Compressor {
 public:
  // A compressor for `compression` writing to `out` (not owned; it must
  // outlive the compressor). `threads` is for xz (0: one per CPU).
  static Status Open(ObjectWriter* out, Compression compression, int threads,
                     std::unique_ptr<Compressor>* compressor);
  virtual ~Compressor() = default;

  // Compresses `data`; output reaches `out` as the compressor produces it.
  virtual Status Write(std::string_view data) = 0;
  // Ends the compressed stream and writes what is left of it to `out`
  // (which the caller then commits). Call once, after the last Write.
  virtual Status Finish() = 0;
};

}  // namespace kvfs::ingest
