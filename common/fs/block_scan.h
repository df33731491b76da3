// ScanBlocks: iteration over the blocks a file stores (the blocks column of
// docs/schema.md), for reads, truncation and the data extents of sparse
// files.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "common/fs/file_system.h"
#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

// Calls fn(block number, contents) for each block of `ino` stored with a
// number in [first, end), in ascending order, until fn returns false. Costs
// one iterator and time in proportion to the blocks that exist in the range,
// never to end - first (a sparse file's holes are not visited). Corruption
// for a malformed key. With `fill_cache` false the blocks read are not kept
// in the store's block cache (IteratorOptions::fill_cache).
Status ScanBlocks(KVStore* store, Ino ino, uint64_t first, uint64_t end,
                  const std::function<bool(uint64_t block, std::string_view data)>& fn,
                  bool fill_cache = true);

}  // namespace kvfs
