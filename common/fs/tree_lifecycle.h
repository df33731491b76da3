// TreeLifecycle: whole top-level directories of a FileSystem, added,
// filled, emptied and dropped as units (docs/schema.md, docs/ingest.md,
// docs/cache.md). Separate from FileSystem's POSIX operations: front ends
// never call these; bulk loaders (ingest/), eviction and the cache manager
// (cache/) do, through FileSystem::trees().
//
// A top-level directory owns an inode range, so a whole subtree can be added
// or dropped with a constant number of key-range operations. Every operation
// here waits for the file system's mutations in flight and holds off new ones
// while its (single) batch is written; reads go on. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"

namespace kvfs {

// A top-level directory whose subtree a bulk loader wrote into an inode
// range reserved with TreeLifecycle::ReserveRange, ready to be linked into the
// root by TreeLifecycle::PublishTree (see docs/ingest.md). The loader writes
// every key below the top directory (its entries, the index and records of
// everything inside, blocks); PublishTree writes the top directory's own
// record and index, the root entry, the range record and the usage.
struct LoadedTree {
  uint64_t range = 0;
  // Its name in the root directory.
  std::string name;
  // The top directory's record: mode, uid, gid, nlink, size (its number of
  // entries), atime, mtime, ctime and change. Type must be kDirectory; ino,
  // rdev, space_used and parent are ignored.
  Attributes attrs;
  // One more than the highest local inode number used in the range.
  uint64_t high_water = 2;
  // Usage of the whole range, the top directory included, as the usage
  // counters count it (schema::UsageBytes per inode; inodes).
  uint64_t bytes = 0;
  uint64_t inodes = 1;
  // If `name` exists in the root: fail with EEXIST, or (replace) replace it
  // if it is a top-level directory, dropping its whole range in the same
  // batch.
  bool replace = false;
};

// A top-level directory to create as a stub (TreeLifecycle::AddStubs).
struct StubTree {
  std::string name;
  NewObject obj;
  Timespec mtime;  // also its atime and ctime
  // Its inode range: 0 for a fresh one; else this range number (one claimed
  // for the tree elsewhere, docs/coordination.md), which must have no record
  // here (EEXIST).
  uint64_t range = 0;
};

// What TreeLifecycle::ReadTreeState reports of a top-level directory.
struct TreeState {
  uint64_t range = 0;
  bool stub = false;     // empty, its contents elsewhere
  bool filling = false;  // contents being loaded (stub is still set)
  uint64_t high_water = 0;
  // Usage of the range, the top directory included.
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

class TreeLifecycle {
 public:
  virtual ~TreeLifecycle() = default;

  // ---- Whole top-level directories (bulk ingest, eviction) ----------------
  // A top-level directory owns an inode range (docs/schema.md), so a whole
  // subtree can be added or dropped with a constant number of key-range
  // operations. These operations wait for every mutation in flight and hold
  // off new ones while their (single) batch is written; reads go on.

  // Reserves a fresh inode range, numbered at least `at_least` and above
  // every range this store has used, for a tree a bulk loader will write:
  // records it durably as loading and sets *range. Nothing in a loading range
  // is reachable. A crash before PublishTree or AbandonRange leaves the range
  // to Open, which deletes it.
  virtual Status ReserveRange(uint64_t at_least, uint64_t* range) = 0;
  // Links a loaded tree into the root in one durable batch (see LoadedTree).
  // EINVAL if tree.range is not a loading range or the record is not a
  // directory; EEXIST if the name exists (and is not a top-level directory
  // to replace). On success *replaced_range (if not null) is the range that
  // was dropped by a replacement, 0 if none.
  virtual Status PublishTree(const LoadedTree& tree, uint64_t* replaced_range) = 0;
  // Gives up a loading range: deletes every key in it and its record.
  // EINVAL if the range is not loading.
  virtual Status AbandonRange(uint64_t range) = 0;
  // Evicts top-level directory `name` with everything below it: removes its
  // root entry, range-deletes every key of its range, and subtracts the
  // range's usage from the totals, in one durable batch. The range number is
  // never used again. EINVAL if `name` is not a top-level directory (a
  // directory in the root). *dropped_range (if not null) is set to its range.
  virtual Status DropTree(std::string_view name, uint64_t* dropped_range) = 0;

  // ---- Stubs: top-level directories whose contents live elsewhere ---------------
  // The cache manager (cache/, docs/cache.md) shows every tarball of the
  // persistent store as a top-level directory. One that is not loaded is a
  // *stub*: an empty directory in a range of its own, marked so in its range
  // record. Filling loads the contents into the stub's range in place and
  // resetting drops them again, so the directory keeps its inode number (and
  // clients their handles) through loads and evictions.

  // Creates the stubs, each in a fresh range or the one it names, in one
  // durable batch. EEXIST, with nothing created, if any of the names exists
  // in the root (or appears twice), or a named range is in use. *inos (if not null) receives their
  // inode numbers, in order.
  virtual Status AddStubs(const std::vector<StubTree>& stubs, std::vector<Ino>* inos) = 0;
  // Marks stub `top` as filling, durably, before a bulk loader writes its
  // contents into its range; *high_water receives the range's high-water mark
  // (local numbers at or above it were never handed out). EINVAL if `top` is
  // not a stub (or is filling already).
  virtual Status BeginFill(Ino top, uint64_t* high_water) = 0;
  // Ends a fill whose keys the bulk loader committed: one durable batch writes
  // the top directory's record from tree.attrs (its name and inode number
  // stay), raises the high-water mark to tree.high_water, adds tree.bytes and
  // tree.inodes - 1 (the top is counted already) to the usage and clears the
  // stub and filling marks. EINVAL if tree.range is not filling.
  virtual Status FinishFill(const LoadedTree& tree) = 0;
  // Turns top-level directory `top` (loaded, or filling) back into an empty
  // stub in one durable batch: range deletes of everything below it, its
  // usage taken out of the totals, its record kept (size 0, nlink 2, change
  // bumped) and the high-water mark kept, so numbers are only handed out
  // again by a fill that chooses to (the same tarball loaded again).
  // EINVAL if `top` is not a top-level directory.
  virtual Status ResetToStub(Ino top) = 0;
  // The state of top-level directory `top` (EINVAL if it is not one).
  virtual Status ReadTreeState(Ino top, TreeState* out) = 0;
};

}  // namespace kvfs
