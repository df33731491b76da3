#include "store/store.h"

#include <cstdio>

#include "common/plugin/plugin_loader.h"
#include "store/store_plugin.h"

namespace kvfs::store {
namespace {

// The kind of plugin a persistent store is (common/plugin/plugin_loader.h).
const PluginKind kStorePluginKind = {"persistent store",           KVFS_STORE_PLUGIN_PREFIX,
                                     "KVFS_STORE_PLUGIN_PATH",     KVFS_STORE_PLUGIN_SYMBOL,
                                     StorePlugin::kAbiVersion,     KVFS_STORE_PLUGIN_BUILD_DIR,
                                     KVFS_STORE_PLUGIN_INSTALL_DIR};

bool IsSchemeChar(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '_';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes of a file:// URL's path.
Status PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return Status::InvalidArgument("bad %-escape in '" + std::string(in) + "'");
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (out->find('\0') != std::string::npos) {
    return Status::InvalidArgument("NUL in '" + std::string(in) + "'");
  }
  return Status::OK();
}

}  // namespace

Status ParseStoreUrl(std::string_view url, StoreLocation* out) {
  if (url.empty()) return Status::InvalidArgument("empty persistent store URL");
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    *out = StoreLocation{"posix", std::string(url)};
    return Status::OK();
  }
  const std::string scheme(url.substr(0, sep));
  const std::string_view rest = url.substr(sep + 3);
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (!IsSchemeChar(scheme[i], i == 0)) {
      return Status::InvalidArgument("persistent store URL '" + std::string(url) +
                                     "': the scheme must be lower-case letters, digits and '_' "
                                     "(file://, s3://, ...)");
    }
  }
  if (scheme.empty()) {
    return Status::InvalidArgument("persistent store URL '" + std::string(url) + "' has no scheme");
  }
  if (scheme == "file") {
    std::string_view path = rest;
    if (path.starts_with("localhost/")) path.remove_prefix(9);
    if (!path.starts_with("/")) {
      return Status::InvalidArgument("persistent store URL '" + std::string(url) +
                                     "': a file:// URL names an absolute path (file:///srv/trees)");
    }
    StoreLocation loc{"posix", ""};
    KVFS_RETURN_IF_ERROR(PercentDecode(path, &loc.resource));
    *out = std::move(loc);
    return Status::OK();
  }
  if (rest.empty()) {
    return Status::InvalidArgument("persistent store URL '" + std::string(url) +
                                   "' names nothing after " + scheme + "://");
  }
  *out = StoreLocation{scheme, std::string(rest)};
  return Status::OK();
}

Status OpenStore(const StoreSpec& spec, std::unique_ptr<PersistentStore>* out) {
  StoreLocation loc;
  KVFS_RETURN_IF_ERROR(ParseStoreUrl(spec.url, &loc));
  const std::string prefix = loc.plugin + "_";
  for (const auto& [name, value] : spec.options) {
    if (name.compare(0, prefix.size(), prefix) == 0) continue;
    const size_t us = name.find('_');
    const std::string owner = us == std::string::npos ? name : name.substr(0, us);
    return Status::InvalidArgument("setting " + name + " applies to " + owner +
                                   " stores, not to the " + loc.plugin + " store " + spec.url);
  }
  const StorePlugin* plugin = nullptr;
  KVFS_RETURN_IF_ERROR(LoadPluginOf(kStorePluginKind, loc.plugin, &plugin));
  StoreSpec resolved = spec;
  if (!resolved.log) {
    resolved.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  std::unique_ptr<PersistentStore> store;
  KVFS_RETURN_IF_ERROR(plugin->open(loc, resolved, &store));
  *out = std::move(store);
  return Status::OK();
}

std::vector<std::string> AvailableStorePlugins() { return AvailablePlugins(kStorePluginKind); }

std::string StoreSettingOption(std::string_view setting) {
  std::string option = "--";
  for (char c : setting) option += c == '_' ? '-' : c;
  return option;
}

const char* StoreSettingOfOption(std::string_view option) {
  for (const char* setting : kStoreSettings) {
    if (StoreSettingOption(setting) == option) return setting;
  }
  return nullptr;
}

}  // namespace kvfs::store
