// CacheRecord: what the cache manager keeps durably about one tree, in the
// key/value store's meta column under "cache/<range:8 BE>" (schema::
// kCachePrefix; docs/cache.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kvfs::cache {

struct CacheRecord {
  // The tarball the tree was last loaded from or written to ("" if none).
  std::string object;
  // That tarball's version (ObjectInfo::version) at the time.
  uint64_t version = 0;
  // The local number the load of (object, version) gave its first member; a
  // load of the same version with it reproduces every inode number. 0 when
  // the live tree's numbers do not come from that tarball (it was written
  // back).
  uint64_t first_local = 0;
  // Changed since it was last written back (or never written back).
  bool dirty = false;
  // Usage of the tree when last loaded: the estimate for loading it again.
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

// "cache/<range:8 BE>"
std::string CacheRecordKey(uint64_t range);
std::string EncodeCacheRecord(const CacheRecord& r);
// Corruption if `value` is not a record this version writes.
Status DecodeCacheRecord(std::string_view value, CacheRecord* r);

}  // namespace kvfs::cache
