#include "tests/test_backends.h"

#include <sstream>

#include "common/kv/memory_store.h"

namespace kvfs::testing {

std::vector<std::string> PersistentBackends() {
  std::vector<std::string> names;
  std::stringstream ss(KVFS_TEST_KV_BACKENDS);  // "rocksdb,lmdb,leveldb", from CMake
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

std::vector<std::string> AllBackends() {
  std::vector<std::string> names = {"memory"};
  for (const std::string& n : PersistentBackends()) names.push_back(n);
  return names;
}

KVOptions SmallBufferOptions(const std::string& backend) {
  if (backend == "rocksdb" || backend == "leveldb") return {{"write_buffer_bytes", "128K"}};
  return {};
}

Status OpenTestStore(const std::string& backend, const std::string& dir,
                     std::unique_ptr<KVStore>* out, const KVOptions& extra) {
  if (backend == "memory") {
    *out = NewMemoryStore();
    return Status::OK();
  }
  KVStoreSpec spec;
  spec.path = dir;
  spec.backend = backend;
  if (backend == "rocksdb" || backend == "leveldb") spec.options["block_cache_bytes"] = "8M";
  for (const auto& [k, v] : extra) spec.options[k] = v;
  return OpenKVStore(spec, out);
}

}  // namespace kvfs::testing
