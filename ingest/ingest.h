// Ingest, export and eviction of whole trees: the persistent store's tarballs
// <-> top-level directories of the file system (docs/ingest.md).
//
// IngestTarball builds every key of the tree straight from the archive
// (TreeBuilder) into a fresh inode range reserved as "loading", hands them
// to the store in one atomic bulk load (KVStore::NewBulkLoader), then links
// the tree into the root with one small batch (TreeLifecycle::PublishTree).
// Until that batch nothing of the tree is visible; a failure abandons the
// range and a crash leaves it to FileSystem::Open, which deletes it.
//
// ExportTree walks a top-level directory and writes it to the persistent
// store as one pax tarball, atomically (temporary object, then rename),
// streaming. EvictTree drops a top-level directory with a constant number of
// range deletes (TreeLifecycle::DropTree).
//
// All three run against a live FileSystem while others use it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "coord/coordination.h"
#include "ingest/persistent_store.h"
#include "ingest/tree_builder.h"
#include "progress/transfer_progress.h"

namespace kvfs::ingest {

struct IngestOptions {
  // The tree's name in the root; empty: the tarball's name without its
  // suffix (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz"). Members whose
  // path starts with the tree's or the tarball's name are placed as if it
  // were not there (see TreeBuilder's path rule).
  std::string name;
  // Replace an existing tree of that name atomically instead of failing
  // with EEXIST.
  bool replace = false;
  // Skip device nodes, FIFOs and sockets instead of refusing the archive.
  bool skip_special = false;
  // Quota: refuse (EDQUOT) a tarball larger than this many bytes, or whose
  // tree stores more than max_tree_bytes (holes of sparse files are free);
  // 0: no limit.
  uint64_t max_archive_bytes = 0;
  uint64_t max_tree_bytes = 0;
  // Memory for sorting directory entries before they spill to disk.
  size_t sort_memory_bytes = kDefaultSortMemoryBytes;
  // Threads decompressing xz tarballs (0: one per CPU).
  int decompress_threads = 0;
  // Directory for SST files and sort runs, on the store's file system
  // (required).
  std::string staging_dir;
  // If set, the inode range is claimed there first (in the persistent store
  // itself, coord::StoreClaims, or in etcd), so that writers sharing it never
  // use the same range (docs/ingest.md, docs/coordination.md).
  coord::Coordination* claims = nullptr;
  // Recorded with the claim (who is ingesting; the tree name is added).
  std::string claim_owner;
  // The name hash the store was created with.
  NameHasher hasher = DefaultNameHasher();
  // If not 0: fill this stub top-level directory in place (FileSystem::
  // BeginFill/FinishFill; name must be its name) instead of publishing a new
  // tree; replace and claims do not apply. On failure it is an empty stub
  // again.
  Ino fill_top = 0;
  // With fill_top: local inode number of the first member below the top; 0:
  // the range's high-water mark (numbers never handed out before).
  uint64_t fill_first_local = 0;
  // If not null: receives the bytes of the tarball as they are read, its
  // total set to the tarball's size (how far the ingest is).
  progress::TransferProgress* progress = nullptr;
};

struct IngestStats {
  std::string name;
  uint64_t range = 0;
  uint64_t replaced_range = 0;  // 0 if nothing was replaced
  uint64_t first_local = 0;     // local number of the first member below the top
  uint64_t archive_bytes = 0;   // size of the tarball
  uint64_t loaded_bytes = 0;    // bytes of keys and values bulk loaded
  BuildStats build;
  // Wall-clock seconds of the phases: reading the archive and building the
  // keys (SST files and sorting included), the atomic bulk load, linking.
  double build_seconds = 0;
  double load_seconds = 0;
  double publish_seconds = 0;
};

// Reserves a loading inode range (TreeLifecycle::ReserveRange) for tree
// `name`; with `claims`, one also claimed there for the caller (`claim_owner`
// and the tree's name recorded with it): a claim lost to another writer
// (EEXIST) gives the range back and tries above the highest claim. The
// caller publishes (TreeLifecycle::PublishTree) or abandons the range.
Status ReserveClaimedRange(FileSystem* fs, coord::Coordination* claims,
                           const std::string& claim_owner, const std::string& name,
                           uint64_t* range);

// Ingests tarball `in`, whose object name (or file name) is `object_name`.
Status IngestTarball(FileSystem* fs, std::unique_ptr<ObjectReader> in, std::string_view object_name,
                     const IngestOptions& options, IngestStats* stats);

// Ingests a local tarball file.
Status IngestFile(FileSystem* fs, const std::string& path, const IngestOptions& options,
                  IngestStats* stats);

// Ingests tree `name` (or object `name`, if it has a tarball suffix) from
// the persistent store. ENOENT if the store has no tarball for it.
Status IngestFromStore(FileSystem* fs, PersistentStore* store, const std::string& name,
                       const IngestOptions& options, IngestStats* stats);

struct ExportOptions {
  Compression compression = Compression::kNone;
  // If not null: receives the bytes of the tarball as they are written; its
  // total, if the caller set none, is set to the tree's stored bytes (an
  // estimate: compression makes the tarball smaller).
  progress::TransferProgress* progress = nullptr;
  // If set, the tree is written as tree `as_tree` of the store (object
  // as_tree + suffix, members "as_tree/..."), e.g. a conflict copy
  // (docs/cache.md); otherwise under its own name.
  std::string as_tree;
  // Called after the whole tarball was written, right before it is
  // committed; an error abandons it (nothing changes in the store) and is
  // returned. E.g. a last check that this server still owns the tree.
  std::function<Status()> before_commit;
};

struct ExportStats {
  std::string object;  // the object written
  uint64_t members = 0;
  uint64_t bytes = 0;          // file contents
  uint64_t object_bytes = 0;   // size of the tarball
  uint64_t removed_stale = 0;  // other-compression tarballs of the tree removed
  double seconds = 0;
};

// Writes top-level directory `name` as one pax tarball to `out` (which the
// caller commits). Members are "name/..." (or "member_top/..." if given),
// directories before their contents, with modes, owners (numeric), mtimes
// and atimes (nanoseconds), symlinks, hard links and device nodes/FIFOs.
Status WriteTree(FileSystem* fs, std::string_view name, ObjectWriter* out, Compression compression,
                 ExportStats* stats, std::string_view member_top = {});

// Exports top-level directory `name` to the persistent store as
// name + TarballSuffix(compression), atomically; tarballs of the same tree
// with another suffix are removed afterwards.
Status ExportTree(FileSystem* fs, std::string_view name, PersistentStore* store,
                  const ExportOptions& options, ExportStats* stats);

struct EvictStats {
  uint64_t range = 0;
  // Usage freed, from StatFs before and after.
  int64_t bytes = 0;
  int64_t inodes = 0;
};

// Drops top-level directory `name` from the file system (TreeLifecycle::DropTree).
Status EvictTree(FileSystem* fs, std::string_view name, EvictStats* stats);

// Removes what interrupted ingests left in `staging_dir` (their SST files
// and sort runs). Only safe while no ingest uses it: call it after opening
// the store, before the first ingest.
Status CleanStagingDir(const std::string& staging_dir);

}  // namespace kvfs::ingest
