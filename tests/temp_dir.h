// TempDir: a fresh directory for one test, removed with its contents when the
// test is done.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace kvfs::testing {

// A fresh directory under $TMPDIR (or /tmp) named PREFIX.XXXXXX, removed with
// its contents on destruction, unless the environment sets KVFS_E2E_KEEP (to
// look at what a failed test left). Failing to make it fails the calling
// test.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "kvfs_test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + ".XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    if (std::getenv("KVFS_E2E_KEEP") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace kvfs::testing
