// Faults of the S3 plugin against radosgw, each injected by the test's
// FaultProxy in front of the server (tests/s3/fault_proxy.h): throttling
// and server errors retried with backoff, client errors reported at once
// with S3's code and request id, dropped and cut connections (a cut read
// resumes where it stopped), stalls (timeouts), refused connections, a
// failed or abandoned multipart upload (aborted on the server, no partial
// object), a lost answer to a completed upload, an object replaced while
// it is read. A server that really stops and restarts is s3_restart_test.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "store/store.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::store_test {
namespace {

using s3_test::FaultRule;
using s3_test::ProxiedRequest;
using store::ObjectReader;
using store::ObjectWriter;
using store::PersistentStore;
using A = FaultRule::Action;

FaultRule Rule(A action, std::string method, std::string target, int count = 1) {
  FaultRule r;
  r.action = action;
  r.method = std::move(method);
  r.target_contains = std::move(target);
  r.count = count;
  return r;
}

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = TestStore::Create(StoreKind::kRadosgw, &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Opens the store with `extra` settings; its log lines go to lines_.
  Status Open(std::unique_ptr<PersistentStore>* out, const store::StoreOptions& extra = {}) {
    store::StoreSpec spec = t_->Spec();
    for (const auto& [k, v] : extra) spec.options[k] = v;
    spec.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      lines_.push_back(line);
      if (on_log_) on_log_(line);
    };
    return store::OpenStore(spec, out);
  }

  // Writes `data` as object `name` through the store.
  Status Write(PersistentStore* store, const std::string& name, const std::string& data) {
    std::unique_ptr<ObjectWriter> w;
    KVFS_RETURN_IF_ERROR(store->OpenWrite(name, &w));
    for (size_t at = 0; at < data.size(); at += 1 << 20) {
      KVFS_RETURN_IF_ERROR(w->Append(std::string_view(data).substr(at, 1 << 20)));
    }
    return w->Commit();
  }

  Status Read(PersistentStore* store, const std::string& name, std::string* out) {
    std::unique_ptr<ObjectReader> r;
    KVFS_RETURN_IF_ERROR(store->OpenRead(name, &r));
    out->clear();
    std::string buf(256 << 10, '\0');
    for (;;) {
      size_t got = 0;
      KVFS_RETURN_IF_ERROR(r->Read(buf.data(), buf.size(), &got));
      if (got == 0) return Status::OK();
      out->append(buf.data(), got);
    }
  }

  // The requests the proxy saw whose target contains `target`.
  std::vector<ProxiedRequest> Seen(const std::string& method, const std::string& target) {
    std::vector<ProxiedRequest> out;
    for (const ProxiedRequest& r : t_->proxy()->Requests()) {
      if (r.method == method && r.target.find(target) != std::string::npos) out.push_back(r);
    }
    return out;
  }

  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }

  std::unique_ptr<TestStore> t_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::function<void(const std::string&)> on_log_;
};

TEST_F(StoreFaultTest, ThrottlingAndServerErrorsAreRetried) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store));
  FaultRule slow = Rule(A::kRespond, "PUT", "slow.tar", 2);  // 503 SlowDown
  t_->proxy()->AddRule(slow);
  FaultRule broken = Rule(A::kRespond, "HEAD", "slow.tar", 1);
  broken.status = 500;
  broken.code = "InternalError";
  t_->proxy()->AddRule(broken);
  ASSERT_OK(Write(store.get(), "slow.tar", "throttled"));
  store::ObjectInfo info;
  ASSERT_OK(store->Stat("slow.tar", &info));
  EXPECT_EQ(info.size, 9u);
  EXPECT_EQ(Seen("PUT", "slow.tar").size(), 3u);
  EXPECT_EQ(Seen("HEAD", "slow.tar").size(), 2u);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("HTTP 503 SlowDown"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("retry 1 of 4"), std::string::npos) << lines[0];
  EXPECT_NE(lines[2].find("HEAD: HTTP 500"), std::string::npos) << lines[2];  // (no body)
  // Throttling that outlasts the retries fails, saying how often it tried.
  t_->proxy()->AddRule(Rule(A::kRespond, "PUT", "never.tar", -1));
  Status s = Write(store.get(), "never.tar", "x");
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("gave up after 5 attempts"), std::string::npos) << s.ToString();
  EXPECT_EQ(Seen("PUT", "never.tar").size(), 5u);
}

TEST_F(StoreFaultTest, ClientErrorsAreReportedAtOnceWithCodeAndRequestId) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store));
  ASSERT_OK(Write(store.get(), "there.tar", "x"));
  struct Case {
    int status;
    const char* code;
    int err;
  };
  for (const Case& c : {Case{403, "AccessDenied", EACCES}, Case{400, "InvalidRequest", EINVAL},
                        Case{404, "NoSuchKey", ENOENT}}) {
    t_->proxy()->ClearRequests();
    FaultRule r = Rule(A::kRespond, "GET", "there.tar", 1);
    r.status = c.status;
    r.code = c.code;
    t_->proxy()->AddRule(r);
    std::string data;
    Status s = Read(store.get(), "there.tar", &data);
    EXPECT_EQ(s.posix_errno(), c.err) << s.ToString();
    EXPECT_NE(s.message().find(std::string("HTTP ") + std::to_string(c.status) + " " + c.code),
              std::string::npos)
        << s.ToString();
    EXPECT_NE(s.message().find("request id proxy-fault"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("there.tar"), std::string::npos) << s.ToString();
    EXPECT_EQ(Seen("GET", "there.tar").size(), 1u) << c.code;  // not retried
  }
  EXPECT_TRUE(Lines().empty());
}

TEST_F(StoreFaultTest, DroppedConnectionsAndStallsAreRetried) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}, {"s3_timeout_seconds", "1"}}));
  const std::string data = ingest_test::RandomBytes(11 << 20, 2);
  // The second part's PUT loses its connection three times (curl itself
  // retries once on a connection it had reused); the completion stalls once.
  t_->proxy()->AddRule(Rule(A::kDrop, "PUT", "partNumber=2", 3));
  t_->proxy()->AddRule(Rule(A::kStall, "POST", "uploadId="));
  ASSERT_OK(Write(store.get(), "parts.tar", data));
  EXPECT_EQ(Seen("PUT", "partNumber=2").size(), 4u);
  EXPECT_EQ(Seen("POST", "uploadId=").size(), 2u);
  std::string back;
  // A GET that stalls before its answer times out and is made again.
  t_->proxy()->AddRule(Rule(A::kStall, "GET", "parts.tar"));
  ASSERT_OK(Read(store.get(), "parts.tar", &back));
  EXPECT_TRUE(back == data);
  EXPECT_EQ(Seen("GET", "parts.tar").size(), 2u);
  bool timeout_logged = false;
  for (const std::string& line : Lines()) {
    timeout_logged |= line.find("no progress for 1 s") != std::string::npos;
  }
  EXPECT_TRUE(timeout_logged);
}

TEST_F(StoreFaultTest, ACutReadResumesWhereItStopped) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store));
  const std::string data = ingest_test::RandomBytes(9 << 20, 3);
  ASSERT_OK(t_->Put("cut.tar", data));
  FaultRule cut = Rule(A::kCutResponse, "GET", "cut.tar", 2);
  cut.after_bytes = 3 << 20;
  t_->proxy()->AddRule(cut);
  std::string back;
  ASSERT_OK(Read(store.get(), "cut.tar", &back));
  EXPECT_TRUE(back == data);
  std::vector<ProxiedRequest> gets = Seen("GET", "cut.tar");
  ASSERT_EQ(gets.size(), 3u);
  EXPECT_NE(gets[0].head.find("Range: bytes=0-"), std::string::npos) << gets[0].head;
  EXPECT_NE(gets[1].head.find("Range: bytes=3145728-"), std::string::npos) << gets[1].head;
  EXPECT_NE(gets[2].head.find("Range: bytes=6291456-"), std::string::npos) << gets[2].head;
  // Every byte crossed the wire once.
  uint64_t body = 0;
  for (const ProxiedRequest& r : gets) body += r.response_bytes;
  EXPECT_LT(body, data.size() + 4096);
}

// A reader closed while its fetch waits on a silent server (or in a
// backoff) stops at once: it does not wait out s3_timeout_seconds (an hour
// here; the bound below is a generous two minutes).
TEST_F(StoreFaultTest, AReaderClosedWhileTheServerStallsStopsAtOnce) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_timeout_seconds", "3600"}}));
  ASSERT_OK(t_->Put("slow.tar", "data"));
  t_->proxy()->AddRule(Rule(A::kStall, "GET", "slow.tar", -1));
  std::unique_ptr<ObjectReader> r;
  ASSERT_OK(store->OpenRead("slow.tar", &r));
  while (Seen("GET", "slow.tar").empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    r.reset();
    closed = true;
  });
  for (int i = 0; i < 1200 && !closed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(closed.load()) << "the reader did not stop";
  closer.join();
}

TEST_F(StoreFaultTest, RefusedConnectionsAreRetriedUntilTheServerIsBack) {
  ASSERT_OK(t_->proxy()->SetRefusing(true));
  std::unique_ptr<PersistentStore> store;
  Status s = Open(&store, {{"s3_retries", "2"}});
  EXPECT_EQ(s.posix_errno(), ECONNREFUSED) << s.ToString();
  EXPECT_NE(s.message().find("gave up after 3 attempts"), std::string::npos) << s.ToString();
  // Back once the client has seen it refused: the open succeeds.
  std::atomic<bool> reopened{false};
  on_log_ = [&](const std::string&) {
    if (!reopened.exchange(true)) EXPECT_OK(t_->proxy()->SetRefusing(false));
  };
  ASSERT_OK(Open(&store, {{"s3_retries", "1000"}}));
  EXPECT_TRUE(reopened.load());
}

TEST_F(StoreFaultTest, AFailedMultipartUploadIsAbortedAndLeavesNoObject) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}}));
  ASSERT_OK(Write(store.get(), "kept.tar", "the old version"));
  const std::string data = ingest_test::RandomBytes(16 << 20, 4);
  // A part refused for good: the upload fails and is aborted.
  FaultRule refuse = Rule(A::kRespond, "PUT", "partNumber=2");
  refuse.status = 403;
  refuse.code = "AccessDenied";
  t_->proxy()->AddRule(refuse);
  Status s = Write(store.get(), "kept.tar", data);
  EXPECT_EQ(s.posix_errno(), EACCES) << s.ToString();
  EXPECT_EQ(Seen("DELETE", "uploadId=").size(), 1u);
  // A completion that keeps failing: the same.
  FaultRule broken = Rule(A::kRespond, "POST", "uploadId=", -1);
  broken.status = 500;
  broken.code = "InternalError";
  t_->proxy()->AddRule(broken);
  s = Write(store.get(), "kept.tar", data);
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_EQ(Seen("DELETE", "uploadId=").size(), 2u);
  t_->proxy()->ClearRules();
  // The old version is untouched, nothing is left unfinished.
  std::string back;
  ASSERT_OK(Read(store.get(), "kept.tar", &back));
  EXPECT_EQ(back, "the old version");
  EXPECT_EQ(t_->UnfinishedUploads(), 0);
}

TEST_F(StoreFaultTest, AnUploadThatCouldNotBeAbortedIsAbortedByTheNextOpen) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}}));
  t_->proxy()->AddRule(Rule(A::kDrop, "PUT", "partNumber=2", -1));
  t_->proxy()->AddRule(Rule(A::kDrop, "DELETE", "uploadId=", -1));
  EXPECT_FALSE(Write(store.get(), "orphan.tar", ingest_test::RandomBytes(12 << 20, 5)).ok());
  t_->proxy()->ClearRules();
  EXPECT_FALSE(t_->Exists("orphan.tar"));
  EXPECT_EQ(t_->UnfinishedUploads(), 1);
  bool said = false;
  for (const std::string& line : Lines()) said |= line.find("cannot abort") != std::string::npos;
  EXPECT_TRUE(said);
  // The default keeps it a day (its writer may be alive); 0 aborts it now.
  ASSERT_OK(Open(&store));
  EXPECT_EQ(t_->UnfinishedUploads(), 1);
  ASSERT_OK(Open(&store, {{"s3_stale_upload_seconds", "0"}}));
  EXPECT_EQ(t_->UnfinishedUploads(), 0);
  said = false;
  for (const std::string& line : Lines()) {
    said |= line.find("aborted the unfinished upload of orphan.tar") != std::string::npos;
  }
  EXPECT_TRUE(said);
}

// The answer to a completion that did complete is lost, and the retry finds
// the upload gone (NoSuchUpload, as AWS answers once it has cleaned up; the
// proxy answers it here, radosgw answers a repeated completion 200): the
// object is checked to be this upload's, and the commit succeeds.
TEST_F(StoreFaultTest, ALostAnswerToACompletedUploadIsNotAFailure) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}}));
  FaultRule lose = Rule(A::kCutResponse, "POST", "uploadId=");
  lose.after_bytes = 0;
  t_->proxy()->AddRule(lose);
  FaultRule gone = Rule(A::kRespond, "POST", "uploadId=");
  gone.status = 404;
  gone.code = "NoSuchUpload";
  t_->proxy()->AddRule(gone);
  const std::string data = ingest_test::RandomBytes(7 << 20, 6);
  ASSERT_OK(Write(store.get(), "done.tar", data));
  EXPECT_EQ(Seen("POST", "uploadId=").size(), 2u);
  std::string back;
  ASSERT_OK(Read(store.get(), "done.tar", &back));
  EXPECT_TRUE(back == data);
}

// S3 may answer a completion 200 and still fail it (an <Error> body): the
// commit fails, the upload is aborted, the old object stays.
TEST_F(StoreFaultTest, ACompletionAnsweredWithAnErrorFails) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store, {{"s3_part_size", "5M"}}));
  ASSERT_OK(Write(store.get(), "ok.tar", "old"));
  FaultRule r = Rule(A::kRespond, "POST", "uploadId=");
  r.status = 200;
  r.code = "InternalError";
  t_->proxy()->AddRule(r);
  Status s = Write(store.get(), "ok.tar", ingest_test::RandomBytes(6 << 20, 9));
  EXPECT_EQ(s.posix_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("completing the upload: InternalError"), std::string::npos)
      << s.ToString();
  std::string back;
  ASSERT_OK(Read(store.get(), "ok.tar", &back));
  EXPECT_EQ(back, "old");
  EXPECT_EQ(t_->UnfinishedUploads(), 0);
}

// An object replaced between two ranges of a read: the read fails (ESTALE)
// rather than mixing two versions.
TEST_F(StoreFaultTest, AnObjectReplacedWhileItIsReadFailsTheRead) {
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(Open(&store));
  ASSERT_OK(t_->Put("moving.tar", ingest_test::RandomBytes(4 << 20, 7)));
  FaultRule cut = Rule(A::kCutResponse, "GET", "moving.tar");
  cut.after_bytes = 1 << 20;
  t_->proxy()->AddRule(cut);
  t_->proxy()->AddRule(Rule(A::kHold, "GET", "moving.tar"));  // the next one (rules go in order)
  std::unique_ptr<ObjectReader> r;
  ASSERT_OK(store->OpenRead("moving.tar", &r));
  ASSERT_TRUE(t_->proxy()->WaitHeld(1));
  ASSERT_OK(t_->Put("moving.tar", ingest_test::RandomBytes(4 << 20, 8)));
  t_->proxy()->ReleaseHeld();
  std::string buf(1 << 20, '\0');
  Status s;
  for (;;) {
    size_t got = 0;
    s = r->Read(buf.data(), buf.size(), &got);
    if (!s.ok() || got == 0) break;
  }
  EXPECT_EQ(s.posix_errno(), ESTALE) << s.ToString();
  EXPECT_NE(s.message().find("replaced while it was read"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace kvfs::store_test
