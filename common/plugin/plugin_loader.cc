#include "common/plugin/plugin_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

namespace kvfs {
namespace {

namespace fs = std::filesystem;

bool ValidPluginName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string PluginFile(const PluginKind& kind, const std::string& dir, const std::string& name) {
  return dir + "/" + kind.file_prefix + name + ".so";
}

// Loaded plugins by (file prefix, name); never unloaded (what they open may
// outlive any scope).
std::mutex plugins_mu;
std::map<std::pair<std::string, std::string>, const PluginHeader*>& Plugins() {
  static auto* plugins = new std::map<std::pair<std::string, std::string>, const PluginHeader*>;
  return *plugins;
}

}  // namespace

std::vector<std::string> PluginSearchPath(const PluginKind& kind) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv(kind.path_env); env != nullptr) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty()) dirs.push_back(dir);
    }
  }
  // The build tree's plugin directory is <build tree>/<kind>_plugins: only
  // code that itself runs from that build tree looks there, so an installed
  // binary never loads a plugin from the tree it was built in.
  std::error_code tree_ec;
  const fs::path build_tree = fs::weakly_canonical(fs::path(kind.build_dir).parent_path(), tree_ec);
  bool in_build_tree = false;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PluginSearchPath), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path self = fs::canonical(info.dli_fname, ec);
    if (!ec) {
      dirs.push_back(self.parent_path().string());
      const fs::path relative = self.lexically_relative(build_tree);
      in_build_tree = !relative.empty() && *relative.begin() != "..";
    }
  }
  if (in_build_tree) dirs.push_back(kind.build_dir);
  dirs.push_back(kind.install_dir);
  return dirs;
}

std::vector<std::string> AvailablePlugins(const PluginKind& kind) {
  std::vector<std::string> names;
  const std::string prefix = kind.file_prefix;
  for (const std::string& dir : PluginSearchPath(kind)) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string file = entry.path().filename().string();
      if (file.size() > prefix.size() + 3 && file.compare(0, prefix.size(), prefix) == 0 &&
          file.compare(file.size() - 3, 3, ".so") == 0) {
        names.push_back(file.substr(prefix.size(), file.size() - prefix.size() - 3));
      }
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

Status LoadPlugin(const PluginKind& kind, const std::string& name, const PluginHeader** out) {
  if (!ValidPluginName(name)) {
    return Status::InvalidArgument(std::string(kind.what) + " name '" + name +
                                   "' is not valid (lower-case letters, digits, '_')");
  }
  std::lock_guard<std::mutex> lock(plugins_mu);
  const auto key = std::make_pair(std::string(kind.file_prefix), name);
  if (auto it = Plugins().find(key); it != Plugins().end()) {
    *out = it->second;
    return Status::OK();
  }
  std::string searched;
  for (const std::string& dir : PluginSearchPath(kind)) {
    std::string file = PluginFile(kind, dir, name);
    searched += (searched.empty() ? "" : ", ") + dir;
    if (access(file.c_str(), F_OK) != 0) continue;
    void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      return Status::IOError("cannot load " + std::string(kind.what) + " '" + name + "' from " +
                             file + ": " + (err != nullptr ? err : "unknown dlopen error"));
    }
    using EntryFn = const PluginHeader* (*)();
    auto entry = reinterpret_cast<EntryFn>(dlsym(handle, kind.entry_symbol));
    const PluginHeader* plugin = entry != nullptr ? entry() : nullptr;
    if (plugin == nullptr) {
      dlclose(handle);
      return Status::IOError(file + " is not a KVFS " + kind.what + " (no " + kind.entry_symbol +
                             ")");
    }
    if (plugin->abi_version != kind.abi_version || plugin->name == nullptr ||
        name != plugin->name) {
      std::string got = plugin->name != nullptr ? plugin->name : "(null)";
      int abi = plugin->abi_version;
      dlclose(handle);
      return Status::IOError(file + " is " + kind.what + " '" + got + "' of plugin ABI " +
                             std::to_string(abi) + "; expected '" + name + "' of ABI " +
                             std::to_string(kind.abi_version) + " (rebuild it)");
    }
    Plugins()[key] = plugin;  // the handle stays open for good
    *out = plugin;
    return Status::OK();
  }
  std::string available;
  for (const std::string& p : AvailablePlugins(kind)) {
    available += (available.empty() ? "" : ", ") + p;
  }
  return Status::InvalidArgument("unknown " + std::string(kind.what) + " '" + name + "': no " +
                                 kind.file_prefix + name + ".so in " + searched +
                                 " (available: " + (available.empty() ? "none" : available) + ")");
}

}  // namespace kvfs
