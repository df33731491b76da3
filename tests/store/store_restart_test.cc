// The S3 plugin against a radosgw that really dies (kill -9) and comes back,
// in a private namespace of this test's own (ci/run-in-namespace.sh), where
// it starts the server with tests/s3/s3-server.sh: an upload whose server
// dies leaves no partial object (the old version stays, the unfinished
// upload is aborted later), and a read resumes where it stopped once the
// server is back. Credentials come from the environment here
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "store/s3/s3_client.h"
#include "store/store.h"
#include "tests/fs/test_util.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/s3/s3_test_server.h"
#include "tests/status_assertions.h"

namespace kvfs::store_test {
namespace {

using store::ObjectReader;
using store::ObjectWriter;
using store::PersistentStore;

constexpr const char* kEndpoint = "http://127.0.0.1:8000";

// Runs tests/s3/s3-server.sh with `args`; fails the test if it fails.
void Server(const std::string& args) {
  std::string out;
  ASSERT_EQ(ingest_test::RunCommand(std::string(KVFS_S3_SERVER_SCRIPT) + " " + args, &out), 0)
      << out;
}

class StoreRestartTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NE(std::getenv("KVFS_E2E_NAMESPACE"), nullptr)
        << "run me in ci/run-in-namespace.sh: I start and kill a radosgw on 127.0.0.1:8000";
    dir_ = new kvfs::testing::TempDir("kvfs-s3-restart");
    Server("radosgw " + dir_->path() + "/rgw 8000");
    setenv("AWS_ACCESS_KEY_ID", "test", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    store::s3::S3ClientOptions o;
    o.endpoint = kEndpoint;
    o.bucket = "restart-" + std::to_string(counter_++);
    o.credentials = {"test", "testing", "", "test"};
    client_ = std::make_unique<store::s3::S3Client>(o);
    ASSERT_OK(s3_test::CreateBucket(client_.get()));
    url_ = "s3://" + o.bucket;
  }

  Status Open(std::unique_ptr<PersistentStore>* out, const store::StoreOptions& extra) {
    store::StoreSpec spec = store::StoreAt(url_);
    spec.options = {{"s3_endpoint", kEndpoint}};
    for (const auto& [k, v] : extra) spec.options[k] = v;
    spec.log = [this](const std::string& line) {
      std::fprintf(stderr, "store log: %s\n", line.c_str());
      std::lock_guard<std::mutex> l(mu_);
      lines_.push_back(line);
      if (on_log_) on_log_(line);
    };
    return store::OpenStore(spec, out);
  }

  std::string Logged(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& line : lines_) {
      if (line.find(what) != std::string::npos) return line;
    }
    return "";
  }

  int UnfinishedUploads() {
    store::s3::S3Request req;
    req.query = {{"uploads", ""}};
    store::s3::S3Response resp;
    if (!client_->Perform(req, &resp).ok()) return -1;
    int n = 0;
    for (size_t at = 0; (at = resp.body.find("<UploadId>", at)) != std::string::npos; ++at) ++n;
    return n;
  }

  static kvfs::testing::TempDir* dir_;
  static int counter_;
  std::unique_ptr<store::s3::S3Client> client_;
  std::string url_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::function<void(const std::string&)> on_log_;
};

kvfs::testing::TempDir* StoreRestartTest::dir_ = nullptr;
int StoreRestartTest::counter_ = 0;

TEST_F(StoreRestartTest, AnUploadWhoseServerDiesLeavesNoPartialObject) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}, {"s3_retries", "2"}}));
  std::unique_ptr<ObjectWriter> w;
  ASSERT_OK(store->OpenWrite("t.tar", &w));
  ASSERT_OK(w->Append("version 1"));
  ASSERT_OK(w->Commit());

  const std::string data = ingest_test::RandomBytes(16 << 20, 1);
  ASSERT_OK(store->OpenWrite("t.tar", &w));
  ASSERT_OK(w->Append(std::string_view(data).substr(0, 6 << 20)));  // the upload has begun
  Server("stop-gateway " + dir_->path() + "/rgw KILL");
  Status s;
  for (size_t at = 6 << 20; s.ok() && at < data.size(); at += 1 << 20) {
    s = w->Append(std::string_view(data).substr(at, 1 << 20));
  }
  if (s.ok()) s = w->Commit();
  EXPECT_EQ(s.posix_errno(), ECONNREFUSED) << s.ToString();
  w.reset();  // cannot abort: the server is down
  EXPECT_NE(Logged("cannot abort the unfinished upload"), "");
  Server("start-gateway " + dir_->path() + "/rgw");

  // The old version, whole; the new one nowhere.
  std::unique_ptr<ObjectReader> r;
  ASSERT_OK(store->OpenRead("t.tar", &r));
  std::string buf(100, '\0');
  size_t got = 0;
  ASSERT_OK(r->Read(buf.data(), buf.size(), &got));
  EXPECT_EQ(buf.substr(0, got), "version 1");
  EXPECT_EQ(UnfinishedUploads(), 1);
  // The next opener aborts what the dead writer left.
  ASSERT_OK(Open(&store, {{"s3_stale_upload_seconds", "0"}}));
  EXPECT_EQ(UnfinishedUploads(), 0);
}

TEST_F(StoreRestartTest, AReadResumesWhenTheServerIsBack) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_retries", "1000"}}));
  const std::string data = ingest_test::RandomBytes(48 << 20, 2);
  std::unique_ptr<ObjectWriter> w;
  ASSERT_OK(store->OpenWrite("big.tar", &w));
  ASSERT_OK(w->Append(data));
  ASSERT_OK(w->Commit());

  std::unique_ptr<ObjectReader> r;
  ASSERT_OK(store->OpenRead("big.tar", &r));
  std::string back(1 << 20, '\0');
  size_t got = 0;
  ASSERT_OK(r->Read(back.data(), back.size(), &got));
  back.resize(got);
  // The server dies mid-transfer; it is started again once the reader has
  // seen it gone.
  std::thread starter;
  std::atomic<bool> started{false};
  on_log_ = [&](const std::string&) {
    if (!started.exchange(true)) {
      starter = std::thread([&] { Server("start-gateway " + dir_->path() + "/rgw"); });
    }
  };
  Server("stop-gateway " + dir_->path() + "/rgw KILL");
  std::string buf(1 << 20, '\0');
  for (;;) {
    Status s = r->Read(buf.data(), buf.size(), &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (got == 0) break;
    back.append(buf.data(), got);
  }
  if (starter.joinable()) starter.join();
  EXPECT_TRUE(started.load());
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
  EXPECT_NE(Logged("resuming at byte"), "");
}

}  // namespace
}  // namespace kvfs::store_test
