// The key/value backends the tests run against, so every backend-
// parameterised suite covers every plugin this build produced (the list
// comes from CMake; a plugin that fails to load fails the tests, it is never
// skipped).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs::testing {

// Names of the persistent backend plugins built with the tests, e.g.
// {"rocksdb", "lmdb", "leveldb"}.
std::vector<std::string> PersistentBackends();

// "memory" followed by PersistentBackends().
std::vector<std::string> AllBackends();

// Opens a store of `backend` for a test: "memory" gives a new in-memory store
// (dir unused); any other name opens (creating) the plugin's store in `dir`
// with small caches, plus `extra` options.
Status OpenTestStore(const std::string& backend, const std::string& dir,
                     std::unique_ptr<KVStore>* out, const KVOptions& extra = {});

// Options that make `backend` flush and compact often (tiny write buffers),
// for tests that must exercise its on-disk structures; empty for backends
// without such a knob.
KVOptions SmallBufferOptions(const std::string& backend);

// A gtest parameter-name printer for backend names.
struct BackendName {
  template <typename ParamInfo>
  std::string operator()(const ParamInfo& info) const {
    return info.param;
  }
};

}  // namespace kvfs::testing
