// Fsck: verifies every invariant of a KVFS store (see docs/schema.md).
//
// It reads the whole store (through one snapshot) and reports each violated
// invariant as one line: undecodable values, entries in the wrong bucket,
// entry/index disagreement, wrong link counts and directory sizes, objects
// not reachable from the root (orphans that are not registered as open
// files), blocks of missing or inline files or past the end of a file,
// stored byte counts that differ from what a file's blocks hold, inode
// numbers outside their range or above its high-water mark or in a dropped
// range, entries naming inodes of a range that is still being loaded, and
// usage counters that differ from the recomputed totals. It never modifies
// the store.
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
  // Ranges being bulk loaded (docs/ingest.md). Their keys are not part of
  // the tree yet and are not checked, except that nothing outside may name
  // them; FileSystem::Open deletes the ranges a crashed load left behind.
  uint64_t loading_ranges = 0;
  bool ok() const { return problems.empty(); }
};

// Checks `store`. `hasher` must be the one the store was created with. A
// non-OK status means the check itself could not run (I/O error), not that
// problems were found.
Status Fsck(KVStore* store, const NameHasher& hasher, FsckReport* report);

}  // namespace kvfs
