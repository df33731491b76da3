// Reading tar archives over libarchive: ArchiveReader reads a tarball member
// by member (tar, ustar, pax, GNU with long names and sparse files; gzip,
// bzip2, xz, zstd or lz4 compressed or not), streaming: it never holds more
// than one block of a member's contents. Members are written by TarWriter
// (tar_writer.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "ingest/persistent_store.h"

namespace kvfs::ingest {

// What a member is. A kHardLink member names an earlier member
// (link_target) instead of having contents of its own.
enum class MemberType {
  kRegular,
  kDirectory,
  kSymlink,
  kHardLink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  kSocket,
};

// One member's header.
struct Member {
  std::string path;  // as stored (raw bytes)
  MemberType type = MemberType::kRegular;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // regular files: bytes of contents (holes included)
  Timespec mtime;
  bool has_atime = false;
  Timespec atime;
  uint64_t rdev = 0;        // device nodes (Linux dev_t encoding)
  std::string link_target;  // symlink target, or the hard link's member path
};

class ArchiveReader {
 public:
  // Starts reading the tarball `in` (compression and format are detected).
  static Status Open(std::unique_ptr<ObjectReader> in, std::unique_ptr<ArchiveReader>* out);
  virtual ~ArchiveReader() = default;

  // Reads the next member's header; *end at the end of the archive. A
  // corrupt or truncated archive gives EINVAL with libarchive's explanation;
  // read errors of the underlying object keep their errno.
  virtual Status Next(Member* m, bool* end) = 0;
  // Reads the current member's contents in pieces at ascending offsets
  // (holes of sparse members are skipped: they read as zeros). *end after
  // the last piece. `data` stays valid until the next call.
  virtual Status ReadData(uint64_t* offset, std::string_view* data, bool* end) = 0;
  // Bytes consumed from the (compressed) input so far.
  virtual uint64_t input_bytes() const = 0;
};

}  // namespace kvfs::ingest
