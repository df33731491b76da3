// Helpers for the FSAL_KVFS end-to-end tests: temporary directories, test
// data, and GaneshaOptions for servers with KVFS exports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/ganesha_server.h"
#include "tests/e2e/nfs_client.h"
#include "tests/temp_dir.h"

namespace kvfs::fsal_test {

using kvfs::testing::TempDir;

// n bytes that differ at every offset and depend on seed (catches misplaced
// or swapped chunks).
std::string Pattern(size_t n, uint32_t seed);

// 64-bit FNV-1a of data, as a content checksum.
uint64_t Checksum(std::string_view data);

// One KVFS export of a test server.
struct KvfsExport {
  int export_id = 1;
  // Path (NFSv3) and Pseudo (NFSv4).
  std::string path = "/kvfs";
  // FSAL parameters.
  std::string db_path;
  std::string subtree = "/";
  uint64_t capacity_bytes = 8ull << 30;
  uint64_t capacity_inodes = 1000000;
  // Key/value backend (kv_backend); empty: the default.
  std::string kv_backend;
  // Extra lines in the FSAL block / the EXPORT block.
  std::string fsal_extra;
  std::string export_extra;
};

// The FSAL module directories of the test binary (kvfs_add_e2e_test defines
// the macro for each test executable).
#ifndef KVFS_E2E_FSAL_DIRS
#define KVFS_E2E_FSAL_DIRS ""
#endif

// Options for a server serving `exports` with the libfsalkvfs.so found in
// fsal_dirs (colon-separated; by default the build tree's; the environment
// variable KVFS_E2E_FSAL_DIRS overrides both).
e2e::GaneshaOptions KvfsServerOptions(const std::vector<KvfsExport>& exports,
                                      std::string_view fsal_dirs = KVFS_E2E_FSAL_DIRS);

// The MDCACHE block of the sample configuration (config/ganesha.conf), whose
// limits bound the server's memory; "" if it cannot be read.
std::string SampleMdcacheBlock();

// The version's name for parameterised test names ("NFSv3", "NFSv4").
std::string VersionName(const ::testing::TestParamInfo<e2e::NfsVersion>& info);

// The other protocol version.
e2e::NfsVersion OtherVersion(e2e::NfsVersion v);

}  // namespace kvfs::fsal_test
