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

// The command-line option of store setting `setting`: "--s3-endpoint" for
// "s3_endpoint" (every command and kvfs-fuse take the settings this way).
std::string StoreSettingOption(std::string_view setting);

// The setting (an entry of kStoreSettings) whose option is `option`
// ("--s3-region" -> "s3_region"), or null if `option` is none.
const char* StoreSettingOfOption(std::string_view option);

// The usage lines of the store settings' options, for a command's --help.
inline constexpr const char* kStoreSettingsUsage = R"(
persistent store (a directory, file:///DIR or s3://BUCKET[/PREFIX];
docs/stores.md):
  --s3-endpoint URL     the S3 server, http(s)://HOST[:PORT] or HOST[:PORT]
                        (default: AWS, https://s3.REGION.amazonaws.com)
  --s3-region NAME      the region requests are signed for (us-east-1)
  --s3-addressing path|virtual   BUCKET in the path or in the host name
                        (default: virtual for AWS, path for --s3-endpoint)
  --s3-tls on|off       HTTPS for an endpoint given without a scheme (on)
  --s3-ca-file FILE     CA certificates to verify the server with
  --s3-profile NAME     take the credentials from this profile of
                        ~/.aws/credentials
  --s3-part-size N      multipart upload part size (16M; 5M to 5G)
  --s3-retries N        retries of a failed request (10)
  --s3-timeout-seconds N  a request without progress for N s fails (60)
  --s3-stale-upload-seconds N  abort unfinished uploads older than N s
                        when the store is opened (86400; 0: never)
  Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
  else ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE).
)";

// Names of the store plugins found on the search path, sorted.
std::vector<std::string> AvailableStorePlugins();

}  // namespace kvfs::store
