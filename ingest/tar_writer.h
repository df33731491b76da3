// TarWriter: writes a POSIX.1-2001 (pax) tarball member by member, with
// sparse files as sparse members, streamed and optionally compressed.
//
// Ours rather than libarchive's writer because of sparse files: libarchive
// must be handed every byte of a sparse member, holes included, so a file
// of 2^62 bytes holding one block would cost 2^62 bytes of calls. Here a
// sparse member costs what the file stores. The format is the one GNU tar
// writes with --format=pax --sparse-version=1.0 (the GNU.sparse.* pax
// records and the map ahead of the data), which GNU tar, bsdtar and
// libarchive (so kvfs-ingest) restore as sparse files. Names are bytes: a
// name that is not ASCII goes into a pax record as UTF-8, or, when it is not
// valid UTF-8, with the pax "hdrcharset=BINARY" marker (only then, since
// GNU tar warns about that record).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ingest/archive.h"
#include "ingest/compress.h"
#include "ingest/persistent_store.h"

namespace kvfs::ingest {

// A run of data in a sparse file: `length` bytes from `offset`.
struct DataExtent {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const DataExtent&, const DataExtent&) = default;
};

class TarWriter {
 public:
  // Starts a tarball written to `out` (not owned; it must outlive the
  // writer), compressed with `compression`. The writer does not Commit()
  // `out`: the caller does after Close().
  static Status Open(ObjectWriter* out, Compression compression,
                     std::unique_ptr<TarWriter>* writer);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Starts member `m`. A regular file's m.size bytes follow through
  // WriteData. InvalidArgument for a socket (tar cannot hold one) or an
  // empty path; FailedPrecondition if the previous member's data is short.
  Status WriteHeader(const Member& m);
  // Starts regular file `m` as a sparse member holding only `extents`
  // (ascending, not overlapping, within m.size, each starting at a multiple
  // of 512): their bytes follow through WriteData, in order, and everything
  // else reads back as zeros. (GNU tar reads each run in whole 512-byte
  // blocks, so the writer pads every run that does not end the file with
  // zeros to a multiple of 512, which is why runs must start on one.)
  Status WriteSparseHeader(const Member& m, const std::vector<DataExtent>& extents);
  // Contents of the current member. More than it announced is an error.
  Status WriteData(std::string_view data);
  // Finishes the archive (end marker, compressor flush).
  Status Close();

 private:
  explicit TarWriter(std::unique_ptr<Compressor> out);
  // Appends a 512-byte header block for `m` (with `size` as its stored
  // size and `name` as its ustar name), preceded by a pax extended header
  // of `pax` records and those the header's fields cannot hold: a name that
  // does not fit goes into a "path" record if `name_in_pax`, else it is cut.
  Status WriteHeaderBlocks(const Member& m, std::string_view name, bool name_in_pax, uint64_t size,
                           std::string pax);
  Status Emit(std::string_view bytes);
  Status EmitZeros(uint64_t n);
  // Checks that the current member got all its data and ends it.
  Status EndMember();

  // The current member's data: runs of bytes the caller gives, each
  // followed by zeros the writer adds (padding of sparse runs and, after the
  // last, of the member to a 512-byte boundary).
  struct Piece {
    uint64_t length;
    uint64_t zeros;
  };
  std::unique_ptr<Compressor> out_;
  std::string buffer_;  // output not yet handed to the compressor
  std::vector<Piece> pieces_;
  size_t piece_ = 0;  // the piece WriteData fills next
  bool closed_ = false;
};

}  // namespace kvfs::ingest
