// Fsck: verifies every invariant of a KVFS store (see docs/schema.md).
//
// It reads the whole store (through one snapshot) and reports each violated
// invariant as one line: undecodable values, entries in the wrong bucket,
// entry/index disagreement, wrong link counts and directory sizes, objects
// not reachable from the root (orphans that are not registered as open
// files), blocks of missing or inline files or past the end of a file, inode
// numbers outside their range or above its high-water mark, and usage
// counters that differ from the recomputed totals. It never modifies the
// store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fs/file_system.h"
#include "common/kv/kv_store.h"

namespace kvfs {

struct FsckReport {
  std::vector<std::string> problems;  // empty if the store is consistent
  uint64_t directories = 0;
  uint64_t files = 0;  // all non-directories
  uint64_t entries = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;  // sum of file sizes
  bool ok() const { return problems.empty(); }
};

// Checks `store`. `hasher` must be the one the store was created with. A
// non-OK status means the check itself could not run (I/O error), not that
// problems were found.
Status Fsck(KVStore* store, const NameHasher& hasher, FsckReport* report);

}  // namespace kvfs
