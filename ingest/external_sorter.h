// ExternalSorter: sorts key/value pairs with bounded memory.
//
// Pairs are buffered in memory up to a budget; a full buffer is sorted and
// written to a run file in the sorter's directory. Finish() merges the runs
// and the buffer into one stream in ascending key order (bytewise), pairs
// with equal keys in the order they were added. Memory is the budget plus a
// read buffer per run; the run files are removed when the sorter is
// destroyed.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kvfs::ingest {

// The sort memory of one ingest by default (its sorters share it). 32 MiB:
// the Linux tree ingests as fast as with 64, and the RocksDB loader's SST
// writer threads need about 40 MiB beside it (docs/limits.md).
inline constexpr size_t kDefaultSortMemoryBytes = 32 << 20;

class ExternalSorter {
 public:
  // Run files go to directory `dir` (which must exist) as `prefix`-<n>.run.
  ExternalSorter(std::string dir, std::string prefix, size_t memory_budget);
  ~ExternalSorter();
  ExternalSorter(const ExternalSorter&) = delete;
  ExternalSorter& operator=(const ExternalSorter&) = delete;

  Status Add(std::string_view key, std::string_view value);

  // Calls fn for every pair in order; stops at the first non-OK status fn
  // returns and returns it. Call once; the sorter is spent afterwards.
  Status Finish(const std::function<Status(std::string_view key, std::string_view value)>& fn);

  // Pairs added so far.
  uint64_t count() const { return count_; }
  // Run files written so far.
  size_t runs() const { return runs_.size(); }

 private:
  struct Item {
    size_t offset;  // in arena_
    uint32_t key_size;
    uint32_t value_size;
  };
  std::string_view KeyOf(const Item& item) const {
    return std::string_view(arena_.data() + item.offset, item.key_size);
  }
  std::string_view ValueOf(const Item& item) const {
    return std::string_view(arena_.data() + item.offset + item.key_size, item.value_size);
  }
  // Sorts the buffer (stable).
  void SortBuffer();
  // Writes the sorted buffer to a new run file and empties it.
  Status Spill();

  const std::string dir_;
  const std::string prefix_;
  const size_t budget_;
  std::string arena_;
  std::vector<Item> items_;
  std::vector<std::string> runs_;  // paths
  uint64_t count_ = 0;
  bool finished_ = false;
};

}  // namespace kvfs::ingest
