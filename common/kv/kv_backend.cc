#include "common/kv/kv_backend.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/kv/kv_plugin.h"

namespace kvfs {
namespace {

namespace fs = std::filesystem;

// The file in a store directory naming its backend.
constexpr const char* kBackendFile = "KVFS_BACKEND";

bool ValidBackendName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The directories searched for plugins, in order (see kv_backend.h).
std::vector<std::string> SearchPath() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("KVFS_KV_PLUGIN_PATH"); env != nullptr) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty()) dirs.push_back(dir);
    }
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&SearchPath), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path self = fs::canonical(info.dli_fname, ec);
    if (!ec) dirs.push_back(self.parent_path().string());
  }
  dirs.push_back(KVFS_KV_PLUGIN_BUILD_DIR);
  dirs.push_back(KVFS_KV_PLUGIN_INSTALL_DIR);
  return dirs;
}

std::string PluginFile(const std::string& dir, const std::string& name) {
  return dir + "/libkvfs-kv-" + name + ".so";
}

// Loaded plugins by name; never unloaded (stores may outlive any scope).
std::mutex plugins_mu;
std::map<std::string, const KVPlugin*>& Plugins() {
  static auto* plugins = new std::map<std::string, const KVPlugin*>;
  return *plugins;
}

Status LoadPlugin(const std::string& name, const KVPlugin** out) {
  if (!ValidBackendName(name)) {
    return Status::InvalidArgument("backend name '" + name +
                                   "' is not valid (lower-case letters, digits, '_')");
  }
  std::lock_guard<std::mutex> lock(plugins_mu);
  if (auto it = Plugins().find(name); it != Plugins().end()) {
    *out = it->second;
    return Status::OK();
  }
  std::string searched;
  for (const std::string& dir : SearchPath()) {
    std::string file = PluginFile(dir, name);
    searched += (searched.empty() ? "" : ", ") + dir;
    if (access(file.c_str(), F_OK) != 0) continue;
    void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      return Status::IOError("cannot load key/value backend '" + name + "' from " + file + ": " +
                             (err != nullptr ? err : "unknown dlopen error"));
    }
    using EntryFn = const KVPlugin* (*)();
    auto entry = reinterpret_cast<EntryFn>(dlsym(handle, KVFS_KV_PLUGIN_SYMBOL));
    const KVPlugin* plugin = entry != nullptr ? entry() : nullptr;
    if (plugin == nullptr) {
      dlclose(handle);
      return Status::IOError(file + " is not a KVFS key/value backend (no " +
                             KVFS_KV_PLUGIN_SYMBOL + ")");
    }
    if (plugin->abi_version != KVPlugin::kAbiVersion || plugin->open == nullptr ||
        plugin->name == nullptr || name != plugin->name) {
      std::string got = plugin->name != nullptr ? plugin->name : "(null)";
      int abi = plugin->abi_version;
      dlclose(handle);
      return Status::IOError(file + " is backend '" + got + "' of plugin ABI " +
                             std::to_string(abi) + "; expected '" + name + "' of ABI " +
                             std::to_string(KVPlugin::kAbiVersion) + " (rebuild it)");
    }
    Plugins()[name] = plugin;  // the handle stays open for good
    *out = plugin;
    return Status::OK();
  }
  std::string available;
  for (const std::string& b : AvailableKVBackends()) {
    available += (available.empty() ? "" : ", ") + b;
  }
  return Status::InvalidArgument("unknown key/value backend '" + name + "': no libkvfs-kv-" + name +
                                 ".so in " + searched +
                                 " (available: " + (available.empty() ? "none" : available) + ")");
}

Status RecordBackend(const std::string& path, const std::string& name) {
  std::string file = path + "/" + kBackendFile;
  std::string tmp = file + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "cannot record the backend in " + file);
  std::string text = name + "\n";
  bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), file.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    return Status::FromErrno(err, "cannot record the backend in " + file);
  }
  int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::OK();
}

}  // namespace

std::string RecordedKVBackend(const std::string& path) {
  std::ifstream in(path + "/" + kBackendFile);
  std::string name;
  if (!in || !std::getline(in, name)) return "";
  return name;
}

namespace {

// CheckRecordedKVBackend, given what is recorded.
Status CheckBackend(const std::string& path, const std::string& recorded,
                    const std::string& backend) {
  if (recorded.empty() || backend.empty() || recorded == backend) return Status::OK();
  return Status::InvalidArgument("the store in " + path + " was created by backend '" + recorded +
                                 "', not '" + backend +
                                 "' (leave the backend unset to use the recorded one)");
}

}  // namespace

Status CheckRecordedKVBackend(const std::string& path, const std::string& backend) {
  return CheckBackend(path, RecordedKVBackend(path), backend);
}

std::vector<std::string> AvailableKVBackends() {
  std::vector<std::string> names;
  const std::string prefix = "libkvfs-kv-";
  for (const std::string& dir : SearchPath()) {
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

Status OpenKVStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out) {
  if (spec.path.empty()) return Status::InvalidArgument("no store path given");
  const std::string recorded = RecordedKVBackend(spec.path);
  KVFS_RETURN_IF_ERROR(CheckBackend(spec.path, recorded, spec.backend));
  KVStoreSpec resolved = spec;
  resolved.backend =
      !recorded.empty() ? recorded : (!spec.backend.empty() ? spec.backend : kDefaultKVBackend);
  const KVPlugin* plugin = nullptr;
  KVFS_RETURN_IF_ERROR(LoadPlugin(resolved.backend, &plugin));
  std::unique_ptr<KVStore> store;
  KVFS_RETURN_IF_ERROR(plugin->open(resolved, &store));
  if (recorded.empty()) KVFS_RETURN_IF_ERROR(RecordBackend(spec.path, resolved.backend));
  *out = std::move(store);
  return Status::OK();
}

Status ParseKVStoreSpec(std::string path, std::string backend, std::string_view options,
                        KVStoreSpec* out) {
  KVStoreSpec spec;
  spec.path = std::move(path);
  spec.backend = std::move(backend);
  KVFS_RETURN_IF_ERROR(ParseKVOptions(options, &spec.options));
  *out = std::move(spec);
  return Status::OK();
}

Status ParseKVOptions(std::string_view text, KVOptions* out) {
  KVOptions parsed;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  while (!trim(text).empty()) {
    size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)).empty()) {
      return Status::InvalidArgument("key/value store option '" + std::string(item) +
                                     "' is not name=value");
    }
    std::string name(trim(item.substr(0, eq)));
    if (!parsed.emplace(name, std::string(trim(item.substr(eq + 1)))).second) {
      return Status::InvalidArgument("key/value store option '" + name + "' given twice");
    }
  }
  *out = std::move(parsed);
  return Status::OK();
}

}  // namespace kvfs
