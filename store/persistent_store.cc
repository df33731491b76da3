#include "store/persistent_store.h"

#include <cerrno>

namespace kvfs::store {

namespace {
constexpr size_t kMaxObjectName = 255;
}  // namespace

Status CheckObjectName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty object name");
  if (name.size() > kMaxObjectName) {
    return Status::FromErrno(ENAMETOOLONG, "object name longer than 255 bytes");
  }
  if (name.front() == '.') {
    return Status::InvalidArgument("object name '" + std::string(name) + "' starts with '.'");
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("object name contains '/' or NUL");
  }
  return Status::OK();
}

}  // namespace kvfs::store
