#include "common/kv/kv_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "common/kv/kv_plugin.h"
#include "common/plugin/plugin_loader.h"

namespace kvfs {
namespace {

// The file in a store directory naming its backend.
constexpr const char* kBackendFile = "KVFS_BACKEND";

// The kind of plugin a key/value backend is (common/plugin/plugin_loader.h).
const PluginKind kKVPluginKind = {"key/value backend",       KVFS_KV_PLUGIN_PREFIX,
                                  "KVFS_KV_PLUGIN_PATH",     KVFS_KV_PLUGIN_SYMBOL,
                                  KVPlugin::kAbiVersion,     KVFS_KV_PLUGIN_BUILD_DIR,
                                  KVFS_KV_PLUGIN_INSTALL_DIR};

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

Status CheckpointKVStore(KVStore* store, const std::string& dest) {
  KVFS_RETURN_IF_ERROR(store->Checkpoint(dest));
  return RecordBackend(dest, store->Name());
}

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

std::vector<std::string> AvailableKVBackends() { return AvailablePlugins(kKVPluginKind); }

Status OpenKVStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out) {
  if (spec.path.empty()) return Status::InvalidArgument("no store path given");
  const std::string recorded = RecordedKVBackend(spec.path);
  KVFS_RETURN_IF_ERROR(CheckBackend(spec.path, recorded, spec.backend));
  KVStoreSpec resolved = spec;
  resolved.backend =
      !recorded.empty() ? recorded : (!spec.backend.empty() ? spec.backend : kDefaultKVBackend);
  const KVPlugin* plugin = nullptr;
  KVFS_RETURN_IF_ERROR(LoadPluginOf(kKVPluginKind, resolved.backend, &plugin));
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
