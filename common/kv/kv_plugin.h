// The contract between the core and a key/value backend plugin.
//
// A backend is a shared library libkvfs-kv-<name>.so that exports one C
// symbol, KVFS_KV_PLUGIN_SYMBOL, returning a pointer to a static KVPlugin.
// The library is built from this source tree with the same compiler and
// headers as the core (the interface passes C++ types), and is loaded with
// dlopen by OpenKVStore (kv_backend.h); kAbiVersion guards against a plugin
// built from other headers. Define a plugin with
//
//   static kvfs::Status OpenMyStore(const kvfs::KVStoreSpec& spec,
//                                   std::unique_ptr<kvfs::KVStore>* out);
//   KVFS_DEFINE_KV_PLUGIN("mystore", OpenMyStore)
//
// The open function receives spec.backend set to the plugin's name and must
// honour spec.create_if_missing (NotFound if false and there is no store),
// validate spec.options (PluginOptionReader helps), and never crash on bad
// input. The store it returns must meet every promise of kv_store.h,
// including durability: Write(sync=true) and Sync() return only once the
// data is on stable storage.
#pragma once

#include <memory>

#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/plugin/plugin_loader.h"
#include "common/status.h"

namespace kvfs {

struct KVPlugin {
  // Bumped whenever kv_store.h, kv_backend.h or this struct change in a way
  // that breaks plugins built before.
  // 2: KVStore::Statistics.
  // 3: IteratorOptions::fill_cache.
  static constexpr int kAbiVersion = 3;

  // kAbiVersion of the headers the plugin was built with, and the backend's
  // name ("rocksdb" for libkvfs-kv-rocksdb.so). First, as the loader
  // (common/plugin/plugin_loader.h) reads it.
  PluginHeader header;
  Status (*open)(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out);
};

}  // namespace kvfs

// The plugin files' prefix, and the exported entry point's name as a string
// for dlsym.
#define KVFS_KV_PLUGIN_PREFIX "libkvfs-kv-"
#define KVFS_KV_PLUGIN_SYMBOL "kvfs_kv_plugin_v1"

// Defines the entry point of a plugin named `name` whose open function is
// `open_fn`. Use once, at global scope, in the plugin's library.
#define KVFS_DEFINE_KV_PLUGIN(name, open_fn)                                                      \
  extern "C" __attribute__((visibility("default"))) const ::kvfs::KVPlugin* kvfs_kv_plugin_v1() { \
    static const ::kvfs::KVPlugin plugin{{::kvfs::KVPlugin::kAbiVersion, (name)}, (open_fn)};     \
    return &plugin;                                                                               \
  }
