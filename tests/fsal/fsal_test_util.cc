#include "tests/fsal/fsal_test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tests/file_contents.h"

namespace kvfs::fsal_test {

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

uint64_t Checksum(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

e2e::GaneshaOptions KvfsServerOptions(const std::vector<KvfsExport>& exports,
                                      std::string_view fsal_dirs) {
  e2e::GaneshaOptions opts;
  // KVFS_E2E_FSAL_DIRS in the environment runs the tests against another
  // build of the module (e.g. an older one, to see a new test fail there).
  const char* override_dirs = std::getenv("KVFS_E2E_FSAL_DIRS");
  opts.plugin_dirs = e2e::SplitPathList(override_dirs != nullptr ? override_dirs : fsal_dirs);
  for (const KvfsExport& k : exports) {
    e2e::GaneshaExport e;
    e.export_id = k.export_id;
    e.path = k.path;
    e.fsal_name = "KVFS";
    e.fsal_config = "db_path = \"" + k.db_path + "\"; subtree = \"" + k.subtree +
                    "\"; capacity_bytes = " + std::to_string(k.capacity_bytes) +
                    "; capacity_inodes = " + std::to_string(k.capacity_inodes) + "; " +
                    (k.kv_backend.empty() ? "" : "kv_backend = \"" + k.kv_backend + "\"; ") +
                    k.fsal_extra;
    e.extra_config = k.export_extra;
    opts.exports.push_back(e);
  }
  return opts;
}

std::string SampleMdcacheBlock() {
  const std::string text =
      kvfs::testing::ReadFileContents(std::string(KVFS_SOURCE_DIR) + "/config/ganesha.conf");
  const size_t begin = text.find("\nMDCACHE {");
  const size_t end = begin == std::string::npos ? begin : text.find("\n}\n", begin);
  return end == std::string::npos ? "" : text.substr(begin + 1, end + 2 - begin);
}

std::string VersionName(const ::testing::TestParamInfo<e2e::NfsVersion>& info) {
  return e2e::NfsVersionName(info.param);
}

e2e::NfsVersion OtherVersion(e2e::NfsVersion v) {
  return v == e2e::NfsVersion::kV3 ? e2e::NfsVersion::kV4 : e2e::NfsVersion::kV3;
}

}  // namespace kvfs::fsal_test
