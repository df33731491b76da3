// Opening a KVStore by backend name: the one way the file system, the FSAL,
// the ingest sidecar and the tools get a persistent store.
//
// Every persistent backend ("rocksdb", "lmdb", "leveldb", ...) is a shared
// library libkvfs-kv-<name>.so (see kv_plugin.h) loaded on first use; the
// core links none of them. A plugin is searched for, in order, in
//   1. the directories of $KVFS_KV_PLUGIN_PATH (colon-separated),
//   2. the directory of the executable or library holding this code,
//   3. the build tree's plugin directory (so uninstalled builds work),
//   4. the installed plugin directory (<libdir>/kvfs).
// A loaded plugin stays loaded for the life of the process. (The loading is
// common/plugin/plugin_loader.h, shared with the persistent store plugins.)
//
// A store directory remembers which backend created it (a file KVFS_BACKEND
// in it), so callers may leave the backend empty to open whatever is there;
// naming a different backend than the recorded one is refused.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/kv/kv_store.h"
#include "common/plugin/plugin_options.h"
#include "common/status.h"

namespace kvfs {

// Backend-specific tuning, name -> value (e.g. "block_cache_bytes" ->
// "256M"). Each backend validates its own (PluginOptionReader): an unknown
// name or a bad value fails the open with InvalidArgument naming it.
using KVOptions = PluginOptions;

// The backend a new store gets when none is named.
inline constexpr const char* kDefaultKVBackend = "rocksdb";

// What to open.
struct KVStoreSpec {
  // Directory of the store. Required.
  std::string path;
  // Backend name; empty: the one recorded in `path`, or kDefaultKVBackend
  // for a new store.
  std::string backend;
  KVOptions options;
  // Create the store (and its directory) if `path` holds none. If false, a
  // path without a store gives NotFound.
  bool create_if_missing = true;
};

// The spec of the store at `path` with its recorded (or the default)
// backend and no options.
inline KVStoreSpec KVStoreAt(std::string path) {
  KVStoreSpec spec;
  spec.path = std::move(path);
  return spec;
}

// Opens the store described by `spec` and sets *out to it. Errors are
// reported, never fatal: an unknown backend (no plugin found: the message
// lists the directories searched and the backends available), a plugin that
// fails to load or has the wrong ABI version (dlerror's text), a backend
// other than the recorded one, bad options, or the backend's own open error.
// *out is untouched on error.
Status OpenKVStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out);

// The backend recorded in store directory `path`, or "" if none is (no
// store there, or one from before backends were recorded).
std::string RecordedKVBackend(const std::string& path);

// OK unless both `backend` and the backend recorded in `path` are non-empty
// and differ: then InvalidArgument saying which backend made the store.
Status CheckRecordedKVBackend(const std::string& path, const std::string& backend);

// Writes a consistent copy of open store `store` into new directory `dest`
// (KVStore::Checkpoint) with its backend recorded, so that OpenKVStore opens
// the copy as it opens the original. EEXIST if dest exists; ENOTSUP for a
// backend that cannot copy itself while open.
Status CheckpointKVStore(KVStore* store, const std::string& dest);

// Names of the backends whose plugin is found on the search path, sorted.
std::vector<std::string> AvailableKVBackends();

// A spec as operators give one (a path, a backend name or "", options as
// "name=value,..." text), with create_if_missing true. InvalidArgument for
// malformed options (ParseKVOptions); *out is untouched then.
Status ParseKVStoreSpec(std::string path, std::string backend, std::string_view options,
                        KVStoreSpec* out);

// Parses "name=value,name=value" (spaces around items ignored; empty text
// gives no options) into *out. InvalidArgument for an item without '=' or an
// empty name, or a name given twice.
Status ParseKVOptions(std::string_view text, KVOptions* out);

}  // namespace kvfs
