// The contract between OpenStore (store/store.h) and a persistent store
// plugin.
//
// A plugin is a shared library libkvfs-store-<name>.so that exports one C
// symbol, KVFS_STORE_PLUGIN_SYMBOL, returning a pointer to a static
// StorePlugin; it is found and loaded like the key/value backends
// (common/plugin/plugin_loader.h; search path $KVFS_STORE_PLUGIN_PATH, then
// the loading binary's directory, the build tree, <libdir>/kvfs). It is
// built from this source tree with the same compiler and headers (the
// interface passes C++ types); kAbiVersion guards against a plugin built
// from other headers. Define a plugin with
//
//   static kvfs::Status OpenMyStore(const kvfs::store::StoreLocation& location,
//                                   const kvfs::store::StoreSpec& spec,
//                                   std::unique_ptr<kvfs::store::PersistentStore>* out);
//   KVFS_DEFINE_STORE_PLUGIN("mystore", OpenMyStore)
//
// The open function receives the parsed URL (location.plugin is the
// plugin's name) and the spec with its options (all named
// "<plugin name>_...", checked by OpenStore), validates them
// (PluginOptionReader helps) and never crashes on bad input. The store it
// returns must meet every promise of store/persistent_store.h, durability
// included: a committed object and a claim are on stable storage when the
// call returns.
#pragma once

#include <memory>

#include "common/plugin/plugin_loader.h"
#include "common/status.h"
#include "store/persistent_store.h"
#include "store/store.h"

namespace kvfs::store {

struct StorePlugin {
  // Bumped whenever persistent_store.h, store.h or this struct change in a
  // way that breaks plugins built before.
  static constexpr int kAbiVersion = 1;

  // kAbiVersion and the plugin's name ("s3" for libkvfs-store-s3.so).
  PluginHeader header;
  Status (*open)(const StoreLocation& location, const StoreSpec& spec,
                 std::unique_ptr<PersistentStore>* out);
};

}  // namespace kvfs::store

// The plugin files' prefix, and the exported entry point's name as a string
// for dlsym.
#define KVFS_STORE_PLUGIN_PREFIX "libkvfs-store-"
#define KVFS_STORE_PLUGIN_SYMBOL "kvfs_store_plugin_v1"

// Defines the entry point of a plugin named `name` whose open function is
// `open_fn`. Use once, at global scope, in the plugin's library.
#define KVFS_DEFINE_STORE_PLUGIN(name, open_fn)                                       \
  extern "C" __attribute__((visibility("default"))) const ::kvfs::store::StorePlugin* \
  kvfs_store_plugin_v1() {                                                            \
    static const ::kvfs::store::StorePlugin plugin{                                   \
        {::kvfs::store::StorePlugin::kAbiVersion, (name)}, (open_fn)};                \
    return &plugin;                                                                   \
  }
