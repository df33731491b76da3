#include "common/fs/location_cache.h"

namespace kvfs {

LocationCache::LocationCache(size_t capacity)
    : per_shard_((capacity + kShards - 1) / kShards), shards_(new Shard[kShards]) {}

LocationCache::Shard& LocationCache::ShardOf(Ino ino) const {
  // Inode numbers are dense within a range: mix them so shards fill evenly.
  return shards_[(ino * 0x9E3779B97F4A7C15ull) >> 58];
}

bool LocationCache::Find(Ino ino, Location* out) const {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(ino);
  if (it == s.map.end()) return false;
  *out = it->second;
  return true;
}

uint64_t LocationCache::BeginFill(Ino ino) const {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.generation;
}

void LocationCache::Fill(Ino ino, uint64_t ticket, const Location& loc) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.generation == ticket) Put(s, ino, loc);
}

void LocationCache::Set(Ino ino, const Location& loc) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  ++s.generation;
  Put(s, ino, loc);
}

void LocationCache::Erase(Ino ino) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> lock(s.mu);
  ++s.generation;
  s.map.erase(ino);
}

void LocationCache::Clear() {
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    ++shards_[i].generation;
    shards_[i].map.clear();
  }
}

void LocationCache::Put(Shard& s, Ino ino, const Location& loc) {
  if (per_shard_ == 0) return;
  auto it = s.map.find(ino);
  if (it != s.map.end()) {
    it->second = loc;
    return;
  }
  if (s.map.size() >= per_shard_) s.map.erase(s.map.begin());
  s.map.emplace(ino, loc);
}

}  // namespace kvfs
