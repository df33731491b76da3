// The benchmarks of the core start each configuration on an empty RocksDB
// store of their own.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "bench/bench_program.h"
#include "common/kv/kv_backend.h"

namespace kvfs::bench {

// Empties `dir` and opens a new RocksDB store in it (the server's
// backend, default settings); dies on error.
inline std::unique_ptr<KVStore> OpenFreshRocksDB(const std::string& dir) {
  std::filesystem::remove_all(dir);
  KVStoreSpec spec;
  spec.path = dir;
  spec.backend = "rocksdb";
  std::unique_ptr<KVStore> store;
  Check(OpenKVStore(spec, &store), "open " + dir);
  return store;
}

}  // namespace kvfs::bench
