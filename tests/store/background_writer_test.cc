// BackgroundWriter (store/background_writer.h): the target gets the same
// bytes in order, in whole buffers, and is committed only by Commit; the
// buffers are bounded; the target's first error reaches the producer and
// stops the writing; an abandoned writer leaves the target uncommitted. Over
// a real directory store too: an export-sized object arrives whole.
#include "store/background_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/status_assertions.h"

namespace kvfs::store {
namespace {

// What a RecordingWriter saw; outlives the writer.
struct Record {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::string> appends;
  bool committed = false;
  bool destroyed = false;
  // Appends beyond this many wait until it is raised.
  size_t gate = SIZE_MAX;
  // The Append with this index (0-based) fails.
  size_t fail_at = SIZE_MAX;
};

class RecordingWriter final : public ObjectWriter {
 public:
  explicit RecordingWriter(Record* r) : r_(r) {}
  ~RecordingWriter() override {
    std::lock_guard<std::mutex> lock(r_->mu);
    r_->destroyed = true;
  }
  Status Append(std::string_view data) override {
    std::unique_lock<std::mutex> lock(r_->mu);
    r_->changed.wait(lock, [&] { return r_->appends.size() < r_->gate; });
    if (r_->appends.size() == r_->fail_at) {
      r_->appends.emplace_back("<failed>");
      return Status::IOError("disk on fire");
    }
    r_->appends.emplace_back(data);
    r_->changed.notify_all();
    return Status::OK();
  }
  Status Commit() override {
    std::lock_guard<std::mutex> lock(r_->mu);
    r_->committed = true;
    return Status::OK();
  }
  uint64_t size() const override { return 0; }

 private:
  Record* const r_;
};

TEST(BackgroundWriterTest, PassesEveryByteInOrderInWholeBuffersAndCommits) {
  Record r;
  std::string sent;
  {
    BackgroundWriter w(std::make_unique<RecordingWriter>(&r), 1000, 3);
    for (int i = 0; i < 500; ++i) {
      const std::string piece =
          std::string(1 + i % 1300, static_cast<char>('a' + i % 26)) + std::to_string(i);
      sent += piece;
      ASSERT_OK(w.Append(piece));
    }
    ASSERT_OK(w.Append(""));  // nothing to write
    EXPECT_EQ(w.size(), sent.size());
    ASSERT_OK(w.Commit());
    std::lock_guard<std::mutex> lock(r.mu);
    EXPECT_TRUE(r.committed);
    std::string received;
    for (size_t i = 0; i < r.appends.size(); ++i) {
      // Every buffer is written full but the last, which Commit writes.
      if (i + 1 < r.appends.size()) {
        EXPECT_EQ(r.appends[i].size(), 1000u) << i;
      }
      received += r.appends[i];
    }
    EXPECT_EQ(received, sent);
    EXPECT_EQ(r.appends.size(), (sent.size() + 999) / 1000);
    EXPECT_FALSE(w.Commit().ok());  // at most once
    EXPECT_FALSE(w.Append("late").ok());
  }
  EXPECT_TRUE(r.destroyed);
}

TEST(BackgroundWriterTest, QueuesNoMoreThanItsBound) {
  Record r;
  r.gate = 0;  // the target takes nothing until the test opens it
  BackgroundWriter w(std::make_unique<RecordingWriter>(&r), 1000, 3);
  std::atomic<int> appended{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(w.Append(std::string(1000, 'x')));
      ++appended;
    }
  });
  // The buffer in flight (the thread is blocked in the target) counts
  // against the bound: three Appends fill the three buffers, and the fourth
  // must wait however long we look.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LE(appended.load(), 3);
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.gate = SIZE_MAX;
  }
  r.changed.notify_all();
  producer.join();
  EXPECT_EQ(appended.load(), 10);
  ASSERT_OK(w.Commit());
  std::lock_guard<std::mutex> lock(r.mu);
  EXPECT_EQ(r.appends.size(), 10u);
}

TEST(BackgroundWriterTest, TheTargetsFirstErrorStopsTheWriting) {
  Record r;
  r.gate = 2;     // the third Append waits in the target...
  r.fail_at = 2;  // ...and then fails
  {
    BackgroundWriter w(std::make_unique<RecordingWriter>(&r), 60, 10);
    // Ten Appends fill ten buffers: most are still queued when the error
    // comes.
    for (int i = 0; i < 10; ++i) ASSERT_OK(w.Append(std::string(60, 'y')));
    {
      std::lock_guard<std::mutex> lock(r.mu);
      r.gate = SIZE_MAX;
    }
    r.changed.notify_all();
    // The error reaches the producer's next Appends and Commit.
    Status s;
    for (int i = 0; i < 1000 && s.ok(); ++i) s = w.Append(std::string(60, 'z'));
    EXPECT_NE(s.ToString().find("disk on fire"), std::string::npos) << s.ToString();
    Status commit = w.Commit();
    EXPECT_NE(commit.ToString().find("disk on fire"), std::string::npos) << commit.ToString();
    std::lock_guard<std::mutex> lock(r.mu);
    ASSERT_EQ(r.appends.size(), 3u);  // two written, the failed one, nothing after
    EXPECT_EQ(r.appends[2], "<failed>");
    EXPECT_FALSE(r.committed);
  }
  EXPECT_TRUE(r.destroyed);
  EXPECT_FALSE(r.committed);
}

TEST(BackgroundWriterTest, AnAbandonedWriterLeavesNoObjectInADirectoryStore) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("background_writer_test." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::unique_ptr<PersistentStore> st;
  ASSERT_OK(OpenStore(StoreAt(dir.string()), &st));
  const std::string chunk(1 << 20, 'z');
  {
    std::unique_ptr<ObjectWriter> out;
    ASSERT_OK(st->OpenWrite("abandoned.tar", &out));
    BackgroundWriter w(std::move(out));
    for (int i = 0; i < 4; ++i) ASSERT_OK(w.Append(chunk));
  }
  {
    std::unique_ptr<ObjectWriter> out;
    ASSERT_OK(st->OpenWrite("whole.tar", &out));
    BackgroundWriter w(std::move(out));
    for (int i = 0; i < 40; ++i) ASSERT_OK(w.Append(chunk));
    ASSERT_OK(w.Commit());
  }
  std::vector<ObjectInfo> objects;
  ASSERT_OK(st->List(&objects));
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].name, "whole.tar");
  EXPECT_EQ(objects[0].size, 40u << 20);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvfs::store
