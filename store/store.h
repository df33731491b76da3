// Opening a persistent store from a URL: the one call every front end (the
// FSAL, the FUSE front end, kvfs-ingest/-export/-evict, the control
// service, the benchmarks) uses to get a PersistentStore
// (store/persistent_store.h).
//
//   /srv/trees, file:///srv/trees    a local or NAS-mounted directory (plugin "posix")
//   s3://BUCKET[/PREFIX]             objects BUCKET/PREFIX/NAME in an S3 bucket (plugin "s3")
//   SCHEME://...                     plugin SCHEME (libkvfs-store-SCHEME.so)
//
// Each plugin is a shared library libkvfs-store-<name>.so loaded on first
// use (store/store_plugin.h). Settings are name=value pairs named after
// their plugin ("s3_region"); docs/stores.md lists them with their defaults.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/plugin/plugin_options.h"
#include "common/status.h"
#include "store/persistent_store.h"
#include "store/store_settings.h"

namespace kvfs::store {

// A store's settings, name -> value; every name starts with its plugin's
// name and '_' ("s3_endpoint").
using StoreOptions = PluginOptions;

// The settings of the plugins built here, as front ends offer them (the
// FSAL block's s3_endpoint, the commands' --s3-endpoint, the control
// service's request fields), in the order of KVFS_STORE_SETTINGS
// (store/store_settings.h). Each plugin checks its own values.
#define KVFS_STORE_SETTING_NAME(name) #name,
inline constexpr const char* kStoreSettings[] = {KVFS_STORE_SETTINGS(KVFS_STORE_SETTING_NAME)};
#undef KVFS_STORE_SETTING_NAME

// What to open.
struct StoreSpec {
  // The store's URL or local path (see the file comment). Required.
  std::string url;
  StoreOptions options;
  // Receives the store's lines for the operator's log (a fallback the
  // server chose, an upload it could not abort); may be called from any
  // thread. Null: standard error. Credentials never appear in them.
  std::function<void(const std::string&)> log;
};

// The spec of the store at `url` with no settings.
inline StoreSpec StoreAt(std::string url) {
  StoreSpec spec;
  spec.url = std::move(url);
  return spec;
}

// A parsed store URL.
struct StoreLocation {
  // The plugin that serves it: "posix", "s3", or another URL scheme.
  std::string plugin;
  // What the plugin is given: posix, the directory ("/srv/trees" for
  // file:///srv/trees); others, what follows "SCHEME://"
  // ("bucket/prefix").
  std::string resource;
};

// Parses `url` (see the file comment) into *out. InvalidArgument for an
// empty URL, a malformed scheme, a file:// URL that is not absolute, or
// nothing after "SCHEME://".
Status ParseStoreUrl(std::string_view url, StoreLocation* out);

// Opens the store `spec` describes and sets *out to it. Errors are
// reported, never fatal: a bad URL, a setting of another plugin (an
// s3_... setting for a local directory), an unknown plugin (the message
// lists the directories searched and the plugins available), a plugin that
// fails to load or has the wrong ABI version, bad settings, or the
// plugin's own error (a missing directory, a bucket that does not exist or
// refuses the credentials). *out is untouched on error.
Status OpenStore(const StoreSpec& spec, std::unique_ptr<PersistentStore>* out);

// Names of the store plugins found on the search path, sorted.
std::vector<std::string> AvailableStorePlugins();

}  // namespace kvfs::store
