// BackgroundWriter (store/background_writer.h): the target gets the same
// bytes in order, in whole buffers, and is committed only by Commit; the
// buffers are bounded; the target's first error reaches the producer and
// stops the writing; an abandoned writer leaves the target uncommitted. Over
// a real directory store too: an export-sized object arrives whole, and on a
// local disk its whole buffers bypass the page cache (direct I/O).
#include "store/background_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "store/store.h"
#include "tests/file_contents.h"
#include "tests/status_assertions.h"
#include "tests/store/direct_io.h"

namespace kvfs::store {
namespace {

using kvfs::testing::CachedBytes;
using kvfs::testing::DirectIoDir;
using kvfs::testing::MakeDirectIoDirs;
using kvfs::testing::ReadFileContents;

// What a RecordingWriter saw; outlives the writer.
struct Record {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::string> appends;
  std::vector<const char*> appends_at;  // where each append's bytes were
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
    r_->appends_at.push_back(data.data());
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
  constexpr size_t kBuffer = BackgroundWriter::kBufferAlignment;
  {
    BackgroundWriter w(std::make_unique<RecordingWriter>(&r), kBuffer, 3);
    for (int i = 0; i < 500; ++i) {
      const std::string piece =
          std::string(1 + i * 7 % 5300, static_cast<char>('a' + i % 26)) + std::to_string(i);
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
      // Whole buffers, at most the ring's three, but the last, which Commit
      // writes...
      EXPECT_LE(r.appends[i].size(), 3 * kBuffer) << i;
      if (i + 1 < r.appends.size()) {
        EXPECT_EQ(r.appends[i].size() % kBuffer, 0u) << i;
        EXPECT_GT(r.appends[i].size(), 0u) << i;
      }
      // ... from memory a target can write with direct I/O.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(r.appends_at[i]) % kBuffer, 0u) << i;
      received += r.appends[i];
    }
    EXPECT_EQ(received, sent);
    EXPECT_FALSE(w.Commit().ok());  // at most once
    EXPECT_FALSE(w.Append("late").ok());
  }
  EXPECT_TRUE(r.destroyed);
}

TEST(BackgroundWriterTest, QueuesNoMoreThanItsBoundAndWritesWhatQueuedInOneCall) {
  Record r;
  r.gate = 0;  // the target takes nothing until the test opens it
  BackgroundWriter w(std::make_unique<RecordingWriter>(&r), 1000, 3);
  std::atomic<int> appended{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(w.Append(std::string(1000, static_cast<char>('0' + i))));
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
  std::string received;
  for (const std::string& a : r.appends) received += a;
  std::string sent;
  for (int i = 0; i < 10; ++i) sent += std::string(1000, static_cast<char>('0' + i));
  EXPECT_EQ(received, sent);
  // Whole buffers, and buffers that queued while the target was blocked
  // went out together: the blocked call carried one buffer and the next the
  // two queued behind it, or the blocked call itself carried two or three.
  for (const std::string& a : r.appends) EXPECT_EQ(a.size() % 1000, 0u);
  ASSERT_GE(r.appends.size(), 2u);
  EXPECT_GE(std::max(r.appends[0].size(), r.appends[1].size()), 2000u);
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

// An export into a directory store: on a local disk the writer's whole
// buffers go past the page cache (the kernel's copy into it was an export's
// biggest CPU cost) and only the last partial block is buffered; on tmpfs,
// which refuses direct I/O, all of it is buffered. Either way the tarball is the bytes
// given, and an append after the unaligned tail is written too.
TEST(BackgroundWriterTest, ADirectoryStoreOnALocalDiskWritesWholeBuffersPastThePageCache) {
  std::string data((6 << 20) + 12345, '\0');
  std::mt19937_64 random(7);
  for (char& ch : data) ch = static_cast<char>(random());
  const std::vector<DirectIoDir> dirs = MakeDirectIoDirs("background_writer_test.direct");
  ASSERT_FALSE(::testing::Test::HasFailure());
  for (const DirectIoDir& c : dirs) {
    SCOPED_TRACE(c.path.string());
    std::unique_ptr<PersistentStore> store;
    ASSERT_OK(OpenStore(StoreAt(c.path.string()), &store));
    std::unique_ptr<ObjectWriter> out;
    ASSERT_OK(store->OpenWrite("t.tar", &out));
    {
      BackgroundWriter w(std::move(out));
      // Six whole buffers and a tail, in pieces of odd sizes.
      for (size_t at = 0; at < data.size(); at += 100003) {
        ASSERT_OK(w.Append(std::string_view(data).substr(at, 100003)));
      }
      ASSERT_OK(w.Commit());
    }
    // On the disk only the last page, which holds the bytes after the last
    // whole 4 KiB block, went through the page cache (whether the writer
    // thread wrote the tail alone or with the buffers before it); on tmpfs
    // every page did.
    const std::string path = (c.path / "t.tar").string();
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t pages = (data.size() + page - 1) / page;
    EXPECT_EQ(CachedBytes(path, data.size()), (c.local_disk ? 1 : pages) * page);
    EXPECT_TRUE(ReadFileContents(path) == data);

    // Aligned appends after an unaligned one (an object written without a
    // BackgroundWriter) are written too, buffered.
    ASSERT_OK(store->OpenWrite("u.tar", &out));
    std::unique_ptr<char, decltype(&std::free)> aligned(
        static_cast<char*>(std::aligned_alloc(4096, 1 << 20)), &std::free);
    std::memcpy(aligned.get(), data.data(), 1 << 20);
    const std::string_view whole_buffer(aligned.get(), 1 << 20);
    ASSERT_OK(out->Append(whole_buffer));
    ASSERT_OK(out->Append(std::string_view(data).substr(0, 4097)));
    ASSERT_OK(out->Append(whole_buffer));
    ASSERT_OK(out->Commit());
    EXPECT_TRUE(ReadFileContents((c.path / "u.tar").string()) ==
                std::string(whole_buffer) + data.substr(0, 4097) + std::string(whole_buffer));
    std::filesystem::remove_all(c.path);
  }
}

}  // namespace
}  // namespace kvfs::store
