// LocationCache: an exact, bounded in-memory copy of part of the inode index
// (column kInodes, docs/schema.md): for each cached inode, whether its record
// is detached or embedded in which entry bucket.
//
// Exact means a lookup never returns a location the store no longer holds:
// - a mutation that changes locations calls Set/Erase after its batch is
//   written and before it releases its LockTable locks (Transaction::Commit),
//   and whole-tree operations call Clear after their writes, under all locks;
// - a reader that missed fills the cache with what it read from the store
//   only if no change touched that inode's shard since it took its ticket
//   (BeginFill, taken before the store read), so a value read before a
//   concurrent change can never be put back after it.
// Absence is never cached. Memory is bounded by `capacity` entries (about
// 58 bytes each); a full shard drops an arbitrary entry, which costs a
// store read later, never correctness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/fs/file_system.h"

namespace kvfs {

class LocationCache {
 public:
  // Where an inode's record lives (the record itself, for a detached one,
  // stays in the store).
  struct Location {
    bool detached = false;
    Ino parent = 0;       // if !detached
    uint64_t bucket = 0;  // if !detached
  };

  // Holds at most `capacity` entries; 0 caches nothing.
  explicit LocationCache(size_t capacity);
  LocationCache(const LocationCache&) = delete;
  LocationCache& operator=(const LocationCache&) = delete;

  // True and *out if `ino` is cached.
  bool Find(Ino ino, Location* out) const;
  // A ticket for filling `ino`: take it before reading the store.
  uint64_t BeginFill(Ino ino) const;
  // Caches what the store said about `ino`, unless the shard changed after
  // `ticket` was taken.
  void Fill(Ino ino, uint64_t ticket, const Location& loc);
  // After a written change: `ino` now lives at `loc` / has no location.
  void Set(Ino ino, const Location& loc);
  void Erase(Ino ino);
  // After a whole-tree change: forgets everything.
  void Clear();

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    uint64_t generation = 0;  // bumped by every change
    std::unordered_map<Ino, Location> map;
  };
  Shard& ShardOf(Ino ino) const;
  // Inserts or replaces, dropping an entry if the shard is full. Needs mu.
  void Put(Shard& s, Ino ino, const Location& loc);

  const size_t per_shard_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace kvfs
