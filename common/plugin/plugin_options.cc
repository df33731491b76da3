#include "common/plugin/plugin_options.h"

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <utility>

namespace kvfs {

PluginOptionReader::PluginOptionReader(std::string subject, const PluginOptions& options)
    : subject_(std::move(subject)), options_(options) {}

const std::string* PluginOptionReader::Find(const std::string& name) {
  known_.insert(name);
  auto it = options_.find(name);
  return it == options_.end() ? nullptr : &it->second;
}

bool ParseByteSize(std::string_view text, uint64_t* out) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) return false;
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  int shift = -1;
  if (i > 0 && i == text.size()) {
    shift = 0;
  } else if (i > 0 && i + 1 == text.size()) {
    switch (text[i]) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      case 'T':
      case 't':
        shift = 40;
        break;
      default:
        break;
    }
  }
  if (shift < 0 || (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift))) {
    return false;
  }
  *out = n << shift;
  return true;
}

void PluginOptionReader::Size(const std::string& name, uint64_t* out) {
  const std::string* v = Find(name);
  if (v == nullptr) return;
  if (!ParseByteSize(*v, out)) {
    errors_ += "; " + name + "='" + *v + "' is not a size (digits with an optional K, M, G or T)";
  }
}

void PluginOptionReader::Int(const std::string& name, int64_t min, int64_t max, int64_t* out) {
  const std::string* v = Find(name);
  if (v == nullptr) return;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    errors_ += "; " + name + "='" + *v + "' is not an integer in [" + std::to_string(min) + ", " +
               std::to_string(max) + "]";
    return;
  }
  *out = n;
}

void PluginOptionReader::Bool(const std::string& name, bool* out) {
  const std::string* v = Find(name);
  if (v == nullptr) return;
  if (*v == "true" || *v == "1" || *v == "yes" || *v == "on") {
    *out = true;
  } else if (*v == "false" || *v == "0" || *v == "no" || *v == "off") {
    *out = false;
  } else {
    errors_ += "; " + name + "='" + *v + "' is not a boolean (true/false)";
  }
}

void PluginOptionReader::String(const std::string& name, std::string* out) {
  const std::string* v = Find(name);
  if (v != nullptr) *out = *v;
}

Status PluginOptionReader::Finish() const {
  std::string errors = errors_;
  for (const auto& [name, value] : options_) {
    if (known_.count(name) != 0) continue;
    std::string list;
    for (const std::string& k : known_) list += (list.empty() ? "" : ", ") + k;
    errors += "; unknown option '" + name + "' (" + subject_ +
              " knows: " + (list.empty() ? "none" : list) + ")";
  }
  if (errors.empty()) return Status::OK();
  return Status::InvalidArgument(subject_ + ": " + errors.substr(2));
}

}  // namespace kvfs
