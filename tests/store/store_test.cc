// The shared persistent store tests: every kind of store (a local directory,
// a bucket on radosgw, a bucket on Swift's s3api; tests/store/test_store.h)
// through OpenStore and its plugin: listing, atomic streamed writes, reads,
// deletes, claims, racing claims, settings and URLs. Faults of the S3
// plugin are store_fault_test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "ingest/persistent_store.h"
#include "store/store.h"
#include "tests/ingest/ingest_test_util.h"
#include "tests/status_assertions.h"
#include "tests/store/test_store.h"

namespace kvfs::store_test {
namespace {

using store::ObjectInfo;
using store::ObjectReader;
using store::ObjectWriter;
using store::PersistentStore;

std::string ReadObject(PersistentStore* store, const std::string& name, size_t chunk = 7) {
  std::unique_ptr<ObjectReader> r;
  Status s = store->OpenRead(name, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return "";
  std::string out, buf(chunk, '\0');  // small reads: exercise the loop
  for (;;) {
    size_t got = 0;
    Status rs = r->Read(buf.data(), buf.size(), &got);
    EXPECT_TRUE(rs.ok()) << rs.ToString();
    if (!rs.ok() || got == 0) break;
    out.append(buf.data(), got);
  }
  EXPECT_EQ(r->size(), out.size());
  return out;
}

class StoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    Status s = TestStore::Create(GetParam(), &t_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_OK(t_->Open(&store_));
  }

  std::unique_ptr<TestStore> t_;
  std::unique_ptr<PersistentStore> store_;
};

TEST_P(StoreTest, WritesAreInvisibleUntilCommitted) {
  std::unique_ptr<ObjectWriter> w;
  ASSERT_OK(store_->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("hello "));
  ASSERT_OK(w->Append("world"));
  EXPECT_EQ(w->size(), 11u);
  ObjectInfo info;
  EXPECT_TRUE(store_->Stat("a.tar", &info).IsNotFound());
  std::vector<ObjectInfo> list;
  ASSERT_OK(store_->List(&list));
  EXPECT_TRUE(list.empty());
  ASSERT_OK(w->Commit());
  ASSERT_OK(store_->Stat("a.tar", &info));
  EXPECT_EQ(info.size, 11u);
  EXPECT_EQ(ReadObject(store_.get(), "a.tar"), "hello world");
  EXPECT_EQ(w->Commit().posix_errno(), EINVAL);  // once

  // A second version replaces the first at once; an abandoned one vanishes.
  ASSERT_OK(store_->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("v2"));
  EXPECT_EQ(ReadObject(store_.get(), "a.tar"), "hello world");
  ASSERT_OK(w->Commit());
  EXPECT_EQ(ReadObject(store_.get(), "a.tar"), "v2");
  ObjectInfo v2;
  ASSERT_OK(store_->Stat("a.tar", &v2));
  EXPECT_NE(v2.version, info.version);
  ASSERT_OK(store_->OpenWrite("a.tar", &w));
  ASSERT_OK(w->Append("never"));
  w.reset();
  EXPECT_EQ(ReadObject(store_.get(), "a.tar"), "v2");
  if (t_->is_s3()) {
    EXPECT_EQ(t_->UnfinishedUploads(), 0);
  } else {
    EXPECT_TRUE(std::filesystem::is_empty(t_->url() + "/.kvfs/tmp"));
  }
}

// Objects larger than a part are multipart uploads: parts go up as the
// object is written, the object appears only when complete, and a reader
// streams it back in ranges.
TEST_P(StoreTest, LargeObjectsStreamBothWays) {
  if (t_->is_s3()) ASSERT_OK(t_->Open(&store_, {{"s3_part_size", "5M"}}));
  const std::string data = ingest_test::RandomBytes((12 << 20) + 12345, 1);
  std::unique_ptr<ObjectWriter> w;
  ASSERT_OK(store_->OpenWrite("big.tar", &w));
  for (size_t at = 0; at < data.size(); at += 1000003) {
    ASSERT_OK(w->Append(std::string_view(data).substr(at, 1000003)));
  }
  EXPECT_FALSE(t_->Exists("big.tar"));
  ASSERT_OK(w->Commit());
  EXPECT_EQ(ReadObject(store_.get(), "big.tar", 1 << 20), data);
  EXPECT_EQ(ReadObject(store_.get(), "big.tar", 4093), data);
  if (t_->is_s3()) {
    int parts = 0;
    for (const auto& r : t_->proxy()->Requests())
      parts += r.target.find("partNumber=") != std::string::npos;
    EXPECT_EQ(parts, 3);
    EXPECT_EQ(t_->UnfinishedUploads(), 0);
  }
  // A reader closed half-way stops at once (its fetch thread too).
  std::unique_ptr<ObjectReader> r;
  ASSERT_OK(store_->OpenRead("big.tar", &r));
  std::string buf(1000, '\0');
  size_t got = 0;
  ASSERT_OK(r->Read(buf.data(), buf.size(), &got));
  EXPECT_EQ(buf.substr(0, got), data.substr(0, got));
  r.reset();
  // An abandoned multipart upload leaves nothing behind.
  ASSERT_OK(store_->OpenWrite("gone.tar", &w));
  ASSERT_OK(w->Append(std::string_view(data).substr(0, 11 << 20)));
  w.reset();
  EXPECT_FALSE(t_->Exists("gone.tar"));
  EXPECT_EQ(t_->UnfinishedUploads(), 0);
}

TEST_P(StoreTest, ListsObjectsOnly) {
  for (const char* name : {"b.tar.gz", "a.tar", "c.tar.zst", "with space+plus.tar", "ünï.tar"}) {
    ASSERT_OK(t_->Put(name, name));
  }
  // Not objects: the store's own names, and (in a bucket) deeper keys.
  ASSERT_OK(t_->Put(".hidden", "x"));
  if (t_->is_s3()) {
    ASSERT_OK(t_->Put("subdir/x.tar", "x"));
  } else {
    std::filesystem::create_directory(t_->url() + "/subdir");
  }
  std::vector<ObjectInfo> list;
  ASSERT_OK(store_->List(&list));
  std::vector<std::string> names;
  for (const ObjectInfo& o : list) names.push_back(o.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.tar", "b.tar.gz", "c.tar.zst",
                                             "with space+plus.tar", "ünï.tar"}));
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list[1].size, 8u);
  // Listing and Stat agree (the cache compares versions from both).
  for (const ObjectInfo& o : list) {
    ObjectInfo st;
    ASSERT_OK(store_->Stat(o.name, &st));
    EXPECT_EQ(st.size, o.size) << o.name;
    EXPECT_EQ(st.version, o.version) << o.name;
    EXPECT_EQ(st.mtime_sec, o.mtime_sec) << o.name;
    EXPECT_EQ(st.mtime_nsec, o.mtime_nsec) << o.name;
    EXPECT_EQ(ReadObject(store_.get(), o.name), o.name);
  }
  ASSERT_OK(store_->Delete("a.tar"));
  EXPECT_TRUE(store_->Delete("a.tar").IsNotFound());
  EXPECT_FALSE(t_->Exists("a.tar"));
  std::unique_ptr<ObjectWriter> w;
  EXPECT_EQ(store_->OpenWrite("../x", &w).posix_errno(), EINVAL);
  EXPECT_EQ(store_->OpenWrite(".kvfs", &w).posix_errno(), EINVAL);
  EXPECT_EQ(store_->OpenWrite(std::string(256, 'n'), &w).posix_errno(), ENAMETOOLONG);
  std::unique_ptr<ObjectReader> r;
  EXPECT_TRUE(store_->OpenRead("missing.tar", &r).IsNotFound());
  ObjectInfo info;
  Status s = store_->Stat("missing.tar", &info);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(store_->Describe()), std::string::npos) << s.ToString();
}

// Tests of stores that take thousands of requests quickly (Swift's s3api
// takes 30 ms a PUT here), and that have an atomic create-exclusive (Swift
// has none: SwiftClaims below).
class QuickStoreTest : public StoreTest {};

// A listing of more than one page (ListObjectsV2 returns 1,000 keys a page).
TEST_P(QuickStoreTest, ListsMoreThanOnePage) {
  constexpr int kObjects = 1100, kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kObjects; i += kThreads) {
        char name[32];
        std::snprintf(name, sizeof(name), "t%05d.tar", i);
        if (!t_->Put(name, "x").ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failed.load(), 0);
  std::vector<ObjectInfo> list;
  ASSERT_OK(store_->List(&list));
  ASSERT_EQ(list.size(), static_cast<size_t>(kObjects));
  for (int i = 0; i < kObjects; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "t%05d.tar", i);
    EXPECT_EQ(list[i].name, name);
  }
}

TEST_P(StoreTest, RangeAndNameClaims) {
  std::unique_ptr<PersistentStore> other;
  ASSERT_OK(t_->Open(&other));
  uint64_t highest;
  ASSERT_OK(store_->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 0u);
  ASSERT_OK(store_->ClaimRange(7, "writer a"));
  Status s = other->ClaimRange(7, "writer b");
  EXPECT_EQ(s.posix_errno(), EEXIST) << s.ToString();
  EXPECT_NE(s.message().find("inode range 7"), std::string::npos) << s.ToString();
  ASSERT_OK(other->ClaimRange(12, "writer b"));
  ASSERT_OK(store_->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 12u);
  ASSERT_OK(store_->ClaimRange(1000000000, "writer a"));
  ASSERT_OK(other->HighestClaimedRange(&highest));
  EXPECT_EQ(highest, 1000000000u);
  std::string note;
  ASSERT_OK(t_->Get(".kvfs/ranges/0000000007", &note));
  EXPECT_EQ(note, "writer a\n");

  bool claimed = true;
  ASSERT_OK(store_->IsNameClaimed("tree", &claimed));
  EXPECT_FALSE(claimed);
  ASSERT_OK(store_->ClaimName("tree", "server a"));
  EXPECT_EQ(other->ClaimName("tree", "server b").posix_errno(), EEXIST);
  ASSERT_OK(other->IsNameClaimed("tree", &claimed));
  EXPECT_TRUE(claimed);
  ASSERT_OK(other->ReleaseName("tree"));
  EXPECT_TRUE(store_->ReleaseName("tree").IsNotFound());
  ASSERT_OK(store_->ClaimName("tree", "server a"));
  // Claims are not objects.
  std::vector<ObjectInfo> list;
  ASSERT_OK(store_->List(&list));
  EXPECT_TRUE(list.empty());
}

TEST_P(StoreTest, OpenErrorsAreClear) {
  std::unique_ptr<PersistentStore> s;
  store::StoreSpec spec = t_->Spec();
  // A setting of another plugin.
  const std::string foreign = t_->is_s3() ? "posix_sync" : "s3_region";
  spec.options[foreign] = "1";
  Status st = store::OpenStore(spec, &s);
  EXPECT_EQ(st.posix_errno(), EINVAL) << st.ToString();
  EXPECT_NE(st.message().find(foreign + " applies to " + (t_->is_s3() ? "posix" : "s3") +
                              " stores, not to the " + (t_->is_s3() ? "s3" : "posix") + " store " +
                              t_->url()),
            std::string::npos)
      << st.ToString();
  if (t_->is_s3()) {
    spec = t_->Spec();
    spec.url = "s3://kvfs-no-such-bucket";
    st = store::OpenStore(spec, &s);
    EXPECT_TRUE(st.IsNotFound()) << st.ToString();
    EXPECT_NE(st.message().find("bucket kvfs-no-such-bucket does not exist"), std::string::npos)
        << st.ToString();
    spec = t_->Spec();
    spec.options["s3_addressing"] = "sideways";
    st = store::OpenStore(spec, &s);
    EXPECT_EQ(st.posix_errno(), EINVAL) << st.ToString();
    EXPECT_NE(st.message().find("s3_addressing 'sideways'"), std::string::npos) << st.ToString();
    spec = t_->Spec();
    spec.options["s3_part_size"] = "1M";
    EXPECT_EQ(store::OpenStore(spec, &s).posix_errno(), EINVAL);
    spec = t_->Spec();
    spec.options["s3_typo"] = "1";
    st = store::OpenStore(spec, &s);
    EXPECT_NE(st.message().find("unknown option 's3_typo'"), std::string::npos) << st.ToString();
    spec = t_->Spec();
    spec.url = "s3://Bad_Bucket";
    EXPECT_EQ(store::OpenStore(spec, &s).posix_errno(), EINVAL);
    // Credentials the server refuses, and none at all.
    spec = t_->Spec();
    spec.options["s3_profile"] = "kvfs-test-wrong";
    st = store::OpenStore(spec, &s);
    EXPECT_EQ(st.posix_errno(), EACCES) << st.ToString();
    EXPECT_NE(st.message().find("no profile 'kvfs-test-wrong'"), std::string::npos)
        << st.ToString();
  } else {
    EXPECT_TRUE(store::OpenStore(store::StoreAt("/nonexistent/kvfs-store"), &s).IsNotFound());
    EXPECT_EQ(store::OpenStore(store::StoreAt("/etc/hostname"), &s).posix_errno(), ENOTDIR);
    // The same directory as a file:// URL.
    ASSERT_OK(t_->Put("f.tar", "file url"));
    ASSERT_OK(store::OpenStore(store::StoreAt("file://" + t_->url()), &s));
    EXPECT_EQ(ReadObject(s.get(), "f.tar"), "file url");
  }
}

// Several processes claim "the next range" as fast as they can: every
// range is claimed by exactly one of them.
TEST_P(QuickStoreTest, RacingProcessesGetDistinctRanges) {
  constexpr int kProcs = 4, kClaims = 40;
  const std::string results = t_->scratch();
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<PersistentStore> store;
      if (!t_->Open(&store).ok()) _exit(1);
      std::ofstream out(results + "/won-" + std::to_string(p));
      for (int got = 0; got < kClaims;) {
        uint64_t highest;
        if (!store->HighestClaimedRange(&highest).ok()) _exit(2);
        Status s = store->ClaimRange(highest + 1, "p" + std::to_string(p));
        if (s.ok()) {
          out << highest + 1 << "\n";
          ++got;
        } else if (s.posix_errno() != EEXIST) {
          _exit(3);
        }
      }
      out.close();
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  std::set<uint64_t> all;
  for (int p = 0; p < kProcs; ++p) {
    std::ifstream in(results + "/won-" + std::to_string(p));
    uint64_t r;
    int n = 0;
    while (in >> r) {
      EXPECT_TRUE(all.insert(r).second) << "range " << r << " claimed twice";
      ++n;
    }
    EXPECT_EQ(n, kClaims);
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kProcs * kClaims));
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kProcs * kClaims));
}

// Swift's s3api answers a conditional PUT with 501: claims are checked,
// then written, and the log says so once (never a silent race).
TEST(SwiftClaims, WithoutConditionalPutTheFallbackIsLoggedOnce) {
  std::unique_ptr<TestStore> t;
  ASSERT_OK(TestStore::Create(StoreKind::kSwift, &t));
  std::vector<std::string> lines;
  std::mutex mu;
  store::StoreSpec spec = t->Spec();
  spec.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> l(mu);
    lines.push_back(line);
  };
  std::unique_ptr<PersistentStore> store;
  ASSERT_OK(store::OpenStore(spec, &store));
  ASSERT_OK(store->ClaimRange(1, "a"));
  EXPECT_EQ(store->ClaimRange(1, "b").posix_errno(), EEXIST);
  ASSERT_OK(store->ClaimName("n", "a"));
  EXPECT_EQ(store->ClaimName("n", "b").posix_errno(), EEXIST);
  ASSERT_OK(store->ClaimRange(2, "a"));
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("does not implement conditional PUT"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("only writer"), std::string::npos) << lines[0];
  // Only the first claim tried the conditional PUT.
  int conditional = 0;
  for (const auto& r : t->proxy()->Requests()) {
    conditional += r.head.find("If-None-Match") != std::string::npos ||
                   r.head.find("if-none-match") != std::string::npos;
  }
  EXPECT_EQ(conditional, 1);
}

TEST(StoreUrls, Parse) {
  store::StoreLocation loc;
  ASSERT_OK(store::ParseStoreUrl("/srv/trees", &loc));
  EXPECT_EQ(loc.plugin, "posix");
  EXPECT_EQ(loc.resource, "/srv/trees");
  ASSERT_OK(store::ParseStoreUrl("file:///srv/my%20trees", &loc));
  EXPECT_EQ(loc.plugin, "posix");
  EXPECT_EQ(loc.resource, "/srv/my trees");
  ASSERT_OK(store::ParseStoreUrl("file://localhost/srv", &loc));
  EXPECT_EQ(loc.resource, "/srv");
  ASSERT_OK(store::ParseStoreUrl("s3://bucket/a/b", &loc));
  EXPECT_EQ(loc.plugin, "s3");
  EXPECT_EQ(loc.resource, "bucket/a/b");
  EXPECT_EQ(store::ParseStoreUrl("", &loc).posix_errno(), EINVAL);
  EXPECT_EQ(store::ParseStoreUrl("file://relative", &loc).posix_errno(), EINVAL);
  EXPECT_EQ(store::ParseStoreUrl("s3://", &loc).posix_errno(), EINVAL);
  EXPECT_EQ(store::ParseStoreUrl("S3://b", &loc).posix_errno(), EINVAL);
  std::unique_ptr<PersistentStore> s;
  Status st = store::OpenStore(store::StoreAt("gs://bucket"), &s);
  EXPECT_EQ(st.posix_errno(), EINVAL) << st.ToString();
  EXPECT_NE(st.message().find("unknown persistent store 'gs'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("available: posix, s3"), std::string::npos) << st.ToString();
  std::vector<std::string> plugins = store::AvailableStorePlugins();
  EXPECT_EQ(plugins, (std::vector<std::string>{"posix", "s3"}));
}

TEST(TarballNames, SuffixesAndCompression) {
  using ingest::Compression;
  std::string name;
  Compression c;
  EXPECT_TRUE(ingest::TreeNameOf("linux-6.1.tar.xz", &name, &c));
  EXPECT_EQ(name, "linux-6.1");
  EXPECT_EQ(c, Compression::kXz);
  EXPECT_TRUE(ingest::TreeNameOf("a.tgz", &name, &c));
  EXPECT_EQ(name, "a");
  EXPECT_EQ(c, Compression::kGzip);
  EXPECT_TRUE(ingest::TreeNameOf("a.b.tar.zst", &name, &c));
  EXPECT_EQ(name, "a.b");
  EXPECT_EQ(c, Compression::kZstd);
  EXPECT_TRUE(ingest::TreeNameOf("x.tar", &name, &c));
  EXPECT_EQ(c, Compression::kNone);
  EXPECT_FALSE(ingest::TreeNameOf(".tar", &name));
  EXPECT_FALSE(ingest::TreeNameOf("x.zip", &name));
  EXPECT_FALSE(ingest::TreeNameOf("x.gz", &name));
  for (Compression k :
       {Compression::kNone, Compression::kGzip, Compression::kZstd, Compression::kXz}) {
    EXPECT_TRUE(ingest::TreeNameOf("t" + std::string(ingest::TarballSuffix(k)), &name, &c));
    EXPECT_EQ(c, k);
  }
  EXPECT_TRUE(ingest::ParseCompression("zstd", &c));
  EXPECT_EQ(c, Compression::kZstd);
  EXPECT_FALSE(ingest::ParseCompression("lzma", &c));
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::ValuesIn(AllStoreKinds()), StoreKindName());
INSTANTIATE_TEST_SUITE_P(Stores, QuickStoreTest,
                         ::testing::Values(StoreKind::kPosix, StoreKind::kRadosgw),
                         StoreKindName());

}  // namespace
}  // namespace kvfs::store_test
