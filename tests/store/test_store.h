// TestStore: a fresh, empty persistent store of each kind the tests run
// against, with the means to set it up and look inside it without going
// through the plugin under test. Store-using tests are parameterised over
// the kinds (INSTANTIATE_TEST_SUITE_P(..., ::testing::ValuesIn(...),
// StoreKindName)):
//
//   posix     a temporary directory (libkvfs-store-posix.so)
//   radosgw   a new bucket (with a key prefix) on Ceph's radosgw
//   swift     a new bucket on OpenStack Swift's s3api, which has no
//             conditional PUT (libkvfs-store-s3.so for both)
//
// S3 stores are reached through a FaultProxy of this process (see
// tests/s3/s3_test_server.h), which tests use to count requests and inject
// faults.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/s3/s3_client.h"
#include "store/store.h"
#include "tests/fs/test_util.h"
#include "tests/s3/fault_proxy.h"
#include "tests/s3/s3_test_server.h"

namespace kvfs::store_test {

enum class StoreKind { kPosix, kRadosgw, kSwift };

// Every kind: the shared store tests.
std::vector<StoreKind> AllStoreKinds();
// One kind per plugin (posix, radosgw): the ingest, cache and e2e tests.
std::vector<StoreKind> PluginStoreKinds();
std::string KindName(StoreKind kind);
// For INSTANTIATE_TEST_SUITE_P's name generator.
struct StoreKindName {
  template <typename Info>
  std::string operator()(const Info& info) const {
    return KindName(info.param);
  }
};

class TestStore {
 public:
  // Makes an empty store of `kind` (a new directory or bucket).
  static Status Create(StoreKind kind, std::unique_ptr<TestStore>* out);
  // Removes the directory, or empties and deletes the bucket.
  ~TestStore();

  StoreKind kind() const { return kind_; }
  bool is_s3() const { return kind_ != StoreKind::kPosix; }
  // "/tmp/.../store" or "s3://BUCKET/PREFIX".
  const std::string& url() const { return url_; }
  // Its settings (s3_endpoint, s3_profile, quick retries).
  const store::StoreOptions& options() const { return options_; }
  store::StoreSpec Spec() const;
  // Opens it through OpenStore (the plugin), with `extra` settings.
  Status Open(std::unique_ptr<store::PersistentStore>* out,
              const store::StoreOptions& extra = {}) const;
  // The lines of an FSAL block naming it: persistent_store = "URL"; s3_...
  std::string FsalConfig() const;
  // Command-line options naming it: --store URL --s3-endpoint ...
  std::string CommandOptions(const char* store_option = "--store") const;

  // Direct access, not through the plugin. Names are object names (a
  // ".kvfs/..." name reaches the claims).
  Status Put(const std::string& name, std::string_view data);
  Status PutFile(const std::string& name, const std::string& local_path);
  Status Get(const std::string& name, std::string* data);
  bool Exists(const std::string& name);
  Status Remove(const std::string& name);
  // Unfinished multipart uploads of the store (0 for posix).
  int UnfinishedUploads();

  // The proxy in front of an S3 server (null for posix).
  s3_test::FaultProxy* proxy() { return proxy_.get(); }
  const s3_test::S3ServerInfo& server() const { return server_; }
  // A local directory for the test's own files (the posix store is in it).
  const std::string& scratch() const { return dir_.path(); }

 private:
  explicit TestStore(StoreKind kind) : kind_(kind) {}
  std::string Key(const std::string& name) const { return prefix_ + name; }

  const StoreKind kind_;
  kvfs::testing::TempDir dir_{"kvfs-test-store"};
  std::string url_;
  store::StoreOptions options_;
  s3_test::S3ServerInfo server_;
  std::unique_ptr<s3_test::FaultProxy> proxy_;
  std::unique_ptr<store::s3::S3Client> client_;  // raw access
  std::string prefix_;                           // key prefix in the bucket
};

}  // namespace kvfs::store_test
