// TreeBuilder: turns the members of a tarball into the keys of one
// top-level directory in its own inode range, without going through the
// FileSystem API (docs/ingest.md).
//
// Inode numbers are handed out in archive order (the top directory is local
// 1), so a file's blocks can be streamed straight into the bulk loader's
// blocks column as the archive is read. Directory entries and the inode
// index are keyed differently; they go through an ExternalSorter (bounded
// memory) and are written at Finish(). What stays in memory: one record per
// directory, a 16-byte index per non-directory (to resolve hard links and
// refuse duplicates), the records of hard-linked files, and the sort buffer.
//
// Path rule: a member path is split at '/', empty and "." components are
// dropped, absolute paths and ".." components are refused; if the first
// component equals the tree's name (or the tarball's name, when the tree is
// given another one) it is dropped too (so both "NAME/src/a.c" and "src/a.c"
// are NAME/src/a.c, and "NAME/" is the top directory itself). Directories that are only implied by
// deeper paths get mode 0755, owner 0:0 and the ingest time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/fs/file_system.h"
#include "common/fs/schema.h"
#include "common/fs/tree_lifecycle.h"
#include "common/kv/kv_store.h"
#include "common/status.h"
#include "ingest/archive.h"
#include "ingest/external_sorter.h"

namespace kvfs::ingest {

// The parameters of a store that its keys depend on.
struct StoreLayout {
  NameHasher hasher;
  uint32_t inline_threshold = 0;
  uint32_t block_size = 0;
};

// Reads the layout from the superblock of `store`, which must have been
// created with `hasher` (EINVAL otherwise; EIO if it has no superblock).
Status ReadStoreLayout(KVStore* store, const NameHasher& hasher, StoreLayout* out);

// Longest member path accepted, in bytes (PATH_MAX including its NUL).
inline constexpr size_t kMaxPathLength = 4096;

// Applies the path rule (see the file comment) to member path `path` of tree
// `top` (whose tarball is called `alias`; may be empty): *components
// receives the components below the top directory (empty for the top
// itself), pointing into `path`. EINVAL for absolute paths and "..",
// ENAMETOOLONG for a component over 255 bytes or a path over kMaxPathLength
// bytes.
Status SplitMemberPath(std::string_view path, std::string_view top, std::string_view alias,
                       std::vector<std::string_view>* components);

struct TreeBuilderOptions {
  // Skip device nodes, FIFOs and sockets (counted) instead of refusing the
  // archive with EINVAL.
  bool skip_special = false;
  // Refuse (EDQUOT) a tree that stores more bytes than this (as the usage
  // counters count them: contents and symlink targets, not the holes of
  // sparse files); 0: no limit.
  uint64_t max_tree_bytes = 0;
  // Memory for sorting entries and the inode index before they spill to
  // run files in work_dir.
  size_t sort_memory_bytes = kDefaultSortMemoryBytes;
  // Directory for sort runs (must exist).
  std::string work_dir;
  // The ingest time: ctime of everything, all times of implied directories.
  Timespec now;
  // The tarball's name, if the tree has another: a leading member path
  // component equal to it also stands for the top directory.
  std::string alias;
  // Local inode number of the first member below the top directory (at
  // least 2). The same archive built with the same first_local gets the same
  // inode numbers, which is how a tree evicted and loaded again keeps its
  // handles (docs/cache.md).
  uint64_t first_local = 2;
};

// What a build produced.
struct BuildStats {
  uint64_t members = 0;
  uint64_t directories = 0;  // the top included
  uint64_t files = 0;
  uint64_t symlinks = 0;
  uint64_t hard_links = 0;  // names added to an earlier file
  uint64_t skipped = 0;     // device nodes, FIFOs and sockets skipped
  uint64_t bytes = 0;       // file contents
  uint64_t blocks = 0;      // content blocks written
  uint64_t sort_runs = 0;   // runs spilled by the sorters
};

class TreeBuilder {
 public:
  // Builds tree `top_name` in inode range `range` into `loader` (not owned).
  TreeBuilder(const StoreLayout& layout, uint64_t range, std::string top_name, BulkLoader* loader,
              const TreeBuilderOptions& options);
  TreeBuilder(const TreeBuilder&) = delete;
  TreeBuilder& operator=(const TreeBuilder&) = delete;

  // Adds member m; the contents of a regular file are read from `archive`.
  // Errors name the member: EINVAL for refused members (see SplitMemberPath,
  // duplicates, a hard link to a missing member, special files unless
  // skipped, contents past the member's size), ENAMETOOLONG, EDQUOT.
  Status Add(const Member& m, ArchiveReader* archive);

  // Writes the entries and the inode index to the loader (the caller
  // commits it) and fills *tree: the range, name, the top directory's
  // attributes, the high-water mark and the usage. replace is left false.
  Status Finish(LoadedTree* tree);

  const BuildStats& stats() const { return stats_; }

 private:
  struct Dir {
    Ino parent = 0;  // 0 for the top
    std::string name;
    schema::InodeRecord record;
    uint64_t entries = 0;
    uint32_t subdirs = 0;
  };
  // A non-directory already in the tree.
  struct FileRef {
    Ino ino;
    FileType type;
  };

  Ino NewIno() { return schema::MakeIno(range_, next_local_++); }
  uint64_t BucketOf(std::string_view name) const {
    return schema::BucketOf(layout_.hasher.hash(name));
  }
  // Key of a directory's child in dir_children_.
  static std::string ChildKey(Ino parent, std::string_view name);
  // Hash identifying (parent, name) of a non-directory in files_.
  static uint64_t FileKey(Ino parent, std::string_view name);

  // Finds (creating implied directories) the directory that holds the
  // member whose components are `parts`, i.e. parts[0..n-2].
  Status ParentDir(const std::vector<std::string_view>& parts, Ino* dir);
  // Creates directory `name` in `parent` with record `rec`.
  Status MakeDir(Ino parent, std::string_view name, const schema::InodeRecord& rec, Ino* ino);
  // The record a member's header describes (contents not included).
  schema::InodeRecord RecordOf(const Member& m, FileType type) const;
  Status AddDirectory(const Member& m, Ino parent, std::string_view name);
  Status AddNonDirectory(const Member& m, Ino parent, std::string_view name,
                         ArchiveReader* archive);
  Status AddHardLink(const Member& m, Ino parent, std::string_view name);
  // Reads a regular file's contents: inline into rec->data, or as blocks.
  Status ReadContents(const Member& m, Ino ino, schema::InodeRecord* rec, ArchiveReader* archive);
  // Queues an entry (and, for a new inode, its index) for the sorters.
  Status EmitEntry(Ino parent, const schema::Entry& e, bool index);
  Status WriteEntries();
  Status WriteIndex();
  std::string Where(const Member& m) const { return "member '" + m.path + "'"; }

  const StoreLayout layout_;
  const uint64_t range_;
  const std::string top_name_;
  const std::string alias_;  // see TreeBuilderOptions::alias
  BulkLoader* const loader_;
  const TreeBuilderOptions options_;

  uint64_t next_local_ = 2;  // local 1 is the top directory
  uint64_t seq_ = 0;         // orders entries of one bucket
  std::unordered_map<Ino, Dir> dirs_;
  std::unordered_map<std::string, Ino> dir_children_;
  std::unordered_map<uint64_t, FileRef> files_;
  std::unordered_map<Ino, uint32_t> extra_links_;  // hard-linked inode -> added names
  std::unordered_map<Ino, schema::InodeRecord> detached_;
  // The last parent directory resolved, for members of the same directory.
  std::vector<std::string> last_parts_;
  std::vector<Ino> last_dirs_;
  ExternalSorter entries_;
  ExternalSorter index_;
  uint64_t usage_bytes_ = 0;
  uint64_t usage_inodes_ = 1;  // the top
  std::string block_;          // the block being filled
  BuildStats stats_;
};

}  // namespace kvfs::ingest
