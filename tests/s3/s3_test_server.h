// The S3 servers the tests run against, as this process reaches them.
//
// A CTest fixture (tests/s3/CMakeLists.txt) starts each server once per test
// run with tests/s3/s3-fixture.sh in a network namespace of its own and
// describes it in $KVFS_S3_SERVERS/<kind>/server.env (kind: radosgw or
// swift). A test reaches it through a FaultProxy of its own (which connects
// inside that namespace), so every S3 request of a test can be counted and
// failed on purpose.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "store/s3/s3_client.h"
#include "tests/s3/fault_proxy.h"

namespace kvfs::s3_test {

struct S3ServerInfo {
  std::string kind;  // "radosgw" or "swift"
  std::string host;  // in the server's namespace
  int port = 0;
  std::string region;
  std::string netns;       // the namespace file
  std::string server_dir;  // its files (tests/s3/s3-server.sh)
  // The profile of tests/s3/credentials with its keys.
  std::string profile;
  store::s3::Credentials credentials;
};

// Reads the description of server `kind`; a clear error naming the fixture
// when the server is not running.
Status FindS3Server(const std::string& kind, S3ServerInfo* out);

// Points AWS_SHARED_CREDENTIALS_FILE at tests/s3/credentials unless it is
// set (call before any thread starts: it changes the environment).
void UseTestCredentials();

// A proxy to `server` from this thread's namespace.
Status ProxyTo(const S3ServerInfo& server, std::unique_ptr<FaultProxy>* out);

// Client options for `bucket` on `server` through `proxy`, with few quick
// retries.
store::s3::S3ClientOptions ClientOptions(const S3ServerInfo& server, const FaultProxy& proxy,
                                         const std::string& bucket);

// Creates bucket `bucket` (PUT), and deletes every object and unfinished
// upload in it and the bucket itself (best effort).
Status CreateBucket(store::s3::S3Client* client);
void DeleteBucket(store::s3::S3Client* client);

}  // namespace kvfs::s3_test
