// Reading a local file as an ObjectReader: tarballs given by path (kvfs-ingest
// FILE) and the objects of the posix store.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::store {

// Opens regular file `path` for sequential reading. A file of at least
// kDirectReadMinBytes on a local disk (OnLocalDisk) is read with direct I/O,
// in whole chunks into the reader's own aligned buffer: read once, it neither
// fills the page cache nor costs the kernel's copy out of it; if the file
// system refuses direct I/O, the reading goes on buffered. Other files are
// read buffered, the kernel told they are read sequentially.
// ENOENT etc. from open(2); EINVAL if it is not a regular file.
Status OpenLocalFile(const std::string& path, std::unique_ptr<ObjectReader>* out);

// Files smaller than this are read through the page cache (they may well be
// in it, having just been written).
inline constexpr uint64_t kDirectReadMinBytes = 8 << 20;

// Whether `fd` is on a local disk file system (ext2-4, XFS, btrfs), where
// direct I/O moves data between the disk and the caller's memory. Elsewhere it
// is refused (tmpfs) or makes every call a synchronous round trip (NFS, CIFS).
bool OnLocalDisk(int fd);

}  // namespace kvfs::store
