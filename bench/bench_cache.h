// What the cache benchmarks share: a cache manager over a fresh (or
// existing) RocksDB store, as a server opens it, with no background
// refresh or delayed write-back (the benchmark drives them).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cache/tree_cache.h"
#include "common/status.h"
#include "ingest/persistent_store.h"

namespace kvfs::bench {

// Opens (creating) the key/value store DIR/db (RocksDB, with `kv_options`,
// "name=value,...") and the cache manager over it and `store`, claiming in
// `coordination` (null: the store's own claims); bulk loads stage in
// DIR/db/ingest-staging.
Status OpenBenchCache(const std::string& dir, std::unique_ptr<ingest::PersistentStore> store,
                      std::unique_ptr<cache::TreeCache>* out, std::string_view kv_options = "",
                      std::shared_ptr<coord::Coordination> coordination = nullptr);

}  // namespace kvfs::bench
