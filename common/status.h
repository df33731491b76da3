// Status: the result of every KVFS operation.
//
// A Status is either OK or carries a POSIX errno value plus a human-readable
// message. The errno is what a front end (NFS, FUSE, a command-line tool)
// reports to its client; the message is for logs and operators. Modeled on
// leveldb::Status, but the code space is errno so no translation table is
// needed between the core and its front ends.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

namespace kvfs {

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;

  static Status OK() { return Status(); }
  // Builds a status with the given errno (must be non-zero) and message.
  static Status FromErrno(int err, std::string_view msg) { return Status(err, msg); }

  static Status NotFound(std::string_view msg) { return Status(ENOENT, msg); }
  static Status Exists(std::string_view msg) { return Status(EEXIST, msg); }
  static Status InvalidArgument(std::string_view msg) { return Status(EINVAL, msg); }
  static Status IOError(std::string_view msg) { return Status(EIO, msg); }
  // Stored data failed validation (bad version byte, truncated record...).
  // Reported to clients as EIO.
  static Status Corruption(std::string_view msg) {
    return Status(EIO, "corruption: " + std::string(msg));
  }
  static Status NotSupported(std::string_view msg) { return Status(ENOTSUP, msg); }

  bool ok() const { return err_ == 0; }
  bool IsNotFound() const { return err_ == ENOENT; }
  // The POSIX errno value; 0 when ok().
  int posix_errno() const { return err_; }
  const std::string& message() const { return msg_; }

  // "OK", or "<strerror>: <message>".
  std::string ToString() const;

 private:
  Status(int err, std::string_view msg) : err_(err), msg_(msg) {}

  int err_ = 0;
  std::string msg_;
};

}  // namespace kvfs

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define KVFS_RETURN_IF_ERROR(expr)     \
  do {                                 \
    ::kvfs::Status _kvfs_s = (expr);   \
    if (!_kvfs_s.ok()) return _kvfs_s; \
  } while (0)
