#include "bench/bench_cache.h"

#include <filesystem>

#include "common/kv/kv_backend.h"

namespace kvfs::bench {

Status OpenBenchCache(const std::string& dir, std::unique_ptr<ingest::PersistentStore> store,
                      std::unique_ptr<cache::TreeCache>* out, std::string_view kv_options,
                      std::shared_ptr<coord::Coordination> coordination) {
  std::unique_ptr<KVStore> kv;
  std::filesystem::create_directories(dir);
  KVStoreSpec spec;
  KVFS_RETURN_IF_ERROR(ParseKVStoreSpec(dir + "/db", "", kv_options, &spec));
  KVFS_RETURN_IF_ERROR(OpenKVStore(spec, &kv));
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(FileSystem::Open(FileSystemOptions(), std::move(kv), &fs));
  cache::TreeCacheOptions o;
  o.refresh_seconds = 0;
  o.writeback_delay_seconds = 0;
  o.staging_dir = dir + "/db/ingest-staging";
  o.coordination = std::move(coordination);
  std::filesystem::create_directories(o.staging_dir);
  return cache::TreeCache::Open(std::move(fs), std::move(store), o, out);
}

}  // namespace kvfs::bench
