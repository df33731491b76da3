// libkvfs-kv-rocksdb.so: the RocksDB backend as a plugin. Options (all
// optional) are the RocksDBOptions fields: block_cache_bytes,
// write_buffer_bytes (sizes, e.g. 64M), max_background_jobs,
// bloom_bits_per_key, bulk_load_threads, bulk_load_file_bytes (a size),
// bulk_load_compression, max_open_files.
#include "common/kv/kv_plugin.h"
#include "common/kv/rocksdb/rocksdb_store.h"
#include "common/plugin/plugin_options.h"

namespace kvfs {
namespace {

Status OpenFromSpec(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out) {
  RocksDBOptions o;
  o.path = spec.path;
  o.create_if_missing = spec.create_if_missing;
  PluginOptionReader r("backend rocksdb", spec.options);
  uint64_t cache = o.block_cache_bytes, buffer = o.write_buffer_bytes,
           file_bytes = o.bulk_load_file_bytes;
  int64_t jobs = o.max_background_jobs, bloom = o.bloom_bits_per_key, threads = o.bulk_load_threads,
          open_files = o.max_open_files;
  r.Size("block_cache_bytes", &cache);
  r.Size("write_buffer_bytes", &buffer);
  r.Int("max_background_jobs", 1, 64, &jobs);
  r.Int("bloom_bits_per_key", 0, 64, &bloom);
  r.Int("bulk_load_threads", 1, 64, &threads);
  r.Size("bulk_load_file_bytes", &file_bytes);
  r.String("bulk_load_compression", &o.bulk_load_compression);
  r.Int("max_open_files", 64, 1000000, &open_files);
  KVFS_RETURN_IF_ERROR(r.Finish());
  o.block_cache_bytes = cache;
  o.write_buffer_bytes = buffer;
  o.max_background_jobs = static_cast<int>(jobs);
  o.bloom_bits_per_key = static_cast<int>(bloom);
  o.bulk_load_threads = static_cast<int>(threads);
  o.bulk_load_file_bytes = file_bytes;
  o.max_open_files = static_cast<int>(open_files);
  return OpenRocksDBStore(o, out);
}

}  // namespace
}  // namespace kvfs

KVFS_DEFINE_KV_PLUGIN("rocksdb", ::kvfs::OpenFromSpec)
