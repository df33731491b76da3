#include "common/status.h"

#include <cstring>

namespace kvfs {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = std::strerror(err_);
  if (!msg_.empty()) {
    out += ": ";
    out += msg_;
  }
  return out;
}

}  // namespace kvfs
