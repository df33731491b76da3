// Plugin options (name -> value, e.g. "block_cache_bytes" -> "256M", or
// "s3_region" -> "eu-west-1") and PluginOptionReader: typed, validated
// access to them, for every kind of plugin (common/plugin/plugin_loader.h).
//
// Usage in a plugin's open function:
//   PluginOptionReader r("backend lmdb", spec.options);
//   r.Size("map_size", &map_size);
//   r.Bool("read_ahead", &read_ahead);
//   KVFS_RETURN_IF_ERROR(r.Finish());  // bad values, unknown names
//
// Each getter leaves *out unchanged (the caller's default) when the option is
// absent. Errors are collected and reported together by Finish().
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kvfs {

// Parses a byte count: decimal digits with an optional K, M, G or T suffix
// (powers of 1024), e.g. "64M". False (and *out untouched) for anything else
// or a value over 2^64 - 1.
bool ParseByteSize(std::string_view text, uint64_t* out);

// A plugin's options, name -> value. Each plugin validates its own: an
// unknown name or a bad value fails the open with InvalidArgument naming it.
using PluginOptions = std::map<std::string, std::string>;

class PluginOptionReader {
 public:
  // `subject` names the plugin in error messages ("backend lmdb").
  PluginOptionReader(std::string subject, const PluginOptions& options);

  // A byte count (ParseByteSize).
  void Size(const std::string& name, uint64_t* out);
  // A decimal integer in [min, max].
  void Int(const std::string& name, int64_t min, int64_t max, int64_t* out);
  // "true"/"false", "1"/"0", "yes"/"no", "on"/"off".
  void Bool(const std::string& name, bool* out);
  // Any string.
  void String(const std::string& name, std::string* out);

  // OK if every option was read by a getter and parsed; otherwise
  // InvalidArgument naming each bad value and each unknown option (with the
  // names this plugin knows).
  Status Finish() const;

 private:
  const std::string* Find(const std::string& name);

  std::string subject_;
  const PluginOptions& options_;
  std::set<std::string> known_;
  std::string errors_;
};

}  // namespace kvfs
