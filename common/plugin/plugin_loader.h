// Loading plugins by name: the shared code of every kind of KVFS plugin
// (key/value backends, common/kv/kv_backend.h; persistent stores,
// store/store.h).
//
// A plugin of a kind is a shared library <file_prefix><name>.so (for
// example libkvfs-kv-rocksdb.so or libkvfs-store-s3.so) that exports one C
// function, the kind's entry symbol, returning a pointer to a static
// descriptor whose first member is a PluginHeader. A plugin is searched
// for, in order, in
//   1. the directories of the kind's environment variable (colon-separated),
//   2. the directory of the executable or library holding this code,
//   3. the build tree's plugin directory of the kind, only for code that runs
//      from that build tree (an installed binary never looks there),
//   4. the installed plugin directory of the kind (<libdir>/kvfs).
// A loaded plugin stays loaded for the life of the process.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace kvfs {

// The first member of every plugin's descriptor.
struct PluginHeader {
  // The ABI version of the headers the plugin was built with.
  int abi_version;
  // The plugin's name: "rocksdb" for libkvfs-kv-rocksdb.so.
  const char* name;
};

// What a kind of plugin looks like. Every field is required.
struct PluginKind {
  const char* what;          // for messages: "key/value backend"
  const char* file_prefix;   // "libkvfs-kv-"
  const char* path_env;      // "KVFS_KV_PLUGIN_PATH"
  const char* entry_symbol;  // "kvfs_kv_plugin_v1"
  int abi_version;           // the version plugins must report
  const char* build_dir;     // the build tree's plugin directory (a child of its root)
  const char* install_dir;   // the installed plugin directory
};

// Loads plugin `name` of `kind` (or finds it loaded) and sets *out to its
// descriptor. Errors, never fatal: InvalidArgument for a name that is not
// lower-case letters, digits and '_' (at most 64), or for which no file is
// found (the message lists the directories searched and the plugins
// available); IOError for a file that fails to load (dlerror's text), has no
// entry symbol, or reports another name or ABI version. The messages name
// the file.
Status LoadPlugin(const PluginKind& kind, const std::string& name, const PluginHeader** out);

// LoadPlugin for a kind whose descriptor type `Plugin` has the PluginHeader
// as its first member, `header`, and an `open` function: *out is the
// descriptor. IOError also for a descriptor without an open function.
template <typename Plugin>
Status LoadPluginOf(const PluginKind& kind, const std::string& name, const Plugin** out) {
  const PluginHeader* header = nullptr;
  KVFS_RETURN_IF_ERROR(LoadPlugin(kind, name, &header));
  static_assert(offsetof(Plugin, header) == 0, "the PluginHeader must come first");
  const auto* plugin = reinterpret_cast<const Plugin*>(header);
  if (plugin->open == nullptr) {
    return Status::IOError(std::string(kind.what) + " '" + name +
                           "' has no open function (rebuild it)");
  }
  *out = plugin;
  return Status::OK();
}

// Names of the plugins of `kind` found on its search path, sorted.
std::vector<std::string> AvailablePlugins(const PluginKind& kind);

// The directories searched for plugins of `kind`, in order.
std::vector<std::string> PluginSearchPath(const PluginKind& kind);

}  // namespace kvfs
