// InodeTable: the inodes the kernel holds, with their FUSE lookup counts and
// the little state kvfs-fuse keeps for each.
//
// FUSE node ids are KVFS inode numbers (never reused, valid after a restart),
// so nothing has to be translated or pinned: the table only counts. Every
// reply that gives the kernel an inode (lookup, create, mkdir, mknod, symlink,
// link, each readdirplus entry) adds one lookup; the kernel's forget takes
// them back, and an inode whose count reaches zero is dropped with its state.
// Memory is therefore bounded by what the kernel caches.
//
// Thread-safe: the table is split into shards, each with its own mutex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/fs/file_system.h"

namespace kvfs::fusefs {

class InodeTable {
 public:
  // What is kept per inode while the kernel knows it.
  struct Node {
    uint64_t lookups = 0;
    // Its name if the kernel looked it up in the mount's root: a top-level
    // directory, which whole-tree operations (ingest, eviction) may replace
    // or remove behind the kernel's back.
    std::string root_name;
    // For -o auto_cache: mtime and size when last opened.
    bool opened = false;
    Timespec open_mtime;
    uint64_t open_size = 0;
  };

  // The kernel got `ino` once more; `root_name` is its name if it was looked
  // up in the mount's root ("" otherwise; a known name is kept).
  void Add(Ino ino, std::string_view root_name = {});
  // The kernel forgot `n` lookups of `ino`. False if it had fewer (a
  // miscount; the inode is dropped anyway).
  bool Forget(Ino ino, uint64_t n);
  // Runs fn on ino's node under its shard's lock; false (fn not run) if the
  // kernel does not hold ino.
  bool With(Ino ino, const std::function<void(Node&)>& fn);
  // Number of inodes held.
  size_t size() const;
  // (inode, name) of every held inode that has a root name.
  std::vector<std::pair<Ino, std::string>> RootNames() const;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Ino, Node> nodes;  // guarded by mu
  };
  Shard& ShardOf(Ino ino) { return shards_[(ino * 0x9e3779b97f4a7c15ull) >> 58]; }

  std::array<Shard, kShards> shards_;
};

}  // namespace kvfs::fusefs
