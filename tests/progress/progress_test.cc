// The progress component: counters read while another thread adds, the
// registry's lifetime rules, the text people see, counting streams over a
// real local file, and a progress line that draws on a terminal only.
#include "progress/transfer_progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "progress/counting_streams.h"
#include "progress/progress_line.h"
#include "store/local_file.h"
#include "tests/fs/test_util.h"
#include "tests/status_assertions.h"

namespace kvfs::progress {
namespace {

TEST(ProgressSnapshot, RateAndTimeLeft) {
  ProgressSnapshot s;
  s.what = "loading t.tar";
  s.done_bytes = 30 << 20;
  s.total_bytes = 120 << 20;
  s.seconds = 3;
  EXPECT_DOUBLE_EQ(s.Rate(), 10 << 20);
  EXPECT_DOUBLE_EQ(s.EtaSeconds(), 9);
  EXPECT_EQ(FormatProgress(s), "30.0 MiB of 120.0 MiB (25%), 10.0 MiB/s, 9 s left");
  s.total_bytes = 0;  // unknown total: no share, no time left
  EXPECT_LT(s.EtaSeconds(), 0);
  EXPECT_EQ(FormatProgress(s), "30.0 MiB, 10.0 MiB/s");
  s.total_bytes = 10 << 20;  // more done than the (estimated) total
  EXPECT_LT(s.EtaSeconds(), 0);
  EXPECT_EQ(FormatProgress(s), "30.0 MiB, 10.0 MiB/s");
  s.done_bytes = 0;
  s.total_bytes = 5;
  s.seconds = 0;
  EXPECT_LT(s.EtaSeconds(), 0);
  EXPECT_EQ(FormatProgress(s), "0 B of 5 B (0%)");
  s.done_bytes = uint64_t{1} << 30;  // 1 GiB/s with 8191 GiB to go
  s.total_bytes = uint64_t{8} << 40;
  s.seconds = 1;
  EXPECT_EQ(FormatProgress(s), "1.0 GiB of 8.0 TiB (0%), 1.0 GiB/s, 2 h 16 min left");
  s.total_bytes = uint64_t{91} << 30;  // 90 s
  EXPECT_EQ(FormatProgress(s), "1.0 GiB of 91.0 GiB (1%), 1.0 GiB/s, 1 min 30 s left");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(uint64_t{5} << 30), "5.0 GiB");
}

TEST(ProgressRegistry, TransfersAreSeenWhileTheyRunOnly) {
  ProgressRegistry registry;
  ProgressSnapshot s;
  EXPECT_FALSE(registry.Find("a", &s));
  {
    ProgressRegistry::Registration a = registry.Begin("a", "loading a", 100);
    std::thread adder([p = a.get()] {
      for (int i = 0; i < 1000; ++i) p->Add(7);
    });
    adder.join();
    ASSERT_TRUE(registry.Find("a", &s));
    EXPECT_EQ(s.id, "a");
    EXPECT_EQ(s.what, "loading a");
    EXPECT_EQ(s.done_bytes, 7000u);
    EXPECT_EQ(s.total_bytes, 100u);
    a.get()->SetTotal(9000);
    ASSERT_EQ(registry.List().size(), 1u);
    EXPECT_EQ(registry.List()[0].total_bytes, 9000u);

    // A second transfer of the same id replaces the view; the first one
    // ending later does not remove the second.
    ProgressRegistry::Registration moved = std::move(a);
    ProgressRegistry::Registration b = registry.Begin("a", "again", 0);
    moved = ProgressRegistry::Registration();
    ASSERT_TRUE(registry.Find("a", &s));
    EXPECT_EQ(s.what, "again");
  }
  EXPECT_FALSE(registry.Find("a", &s));
  EXPECT_TRUE(registry.List().empty());
  // Nothing registered: nothing to add to.
  EXPECT_EQ(ProgressRegistry::Registration().get(), nullptr);
}

TEST(CountingStreams, CountEveryByteOfARealFile) {
  testing::TempDir dir("kvfs-progress");
  const std::string path = dir.path() + "/f";
  std::string data(300000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  std::ofstream(path, std::ios::binary) << data;

  TransferProgress read("r", "reading", 0);
  std::unique_ptr<store::ObjectReader> file;
  ASSERT_OK(store::OpenLocalFile(path, &file));
  std::unique_ptr<store::ObjectReader> in = CountingReader(std::move(file), &read);
  EXPECT_EQ(in->size(), data.size());
  std::string back;
  char buf[7000];
  size_t got;
  do {
    ASSERT_OK(in->Read(buf, sizeof(buf), &got));
    back.append(buf, got);
    EXPECT_EQ(read.Snapshot().done_bytes, back.size());
  } while (got > 0);
  EXPECT_EQ(back, data);

  class StringWriter : public store::ObjectWriter {
   public:
    Status Append(std::string_view d) override {
      if (fail) return Status::IOError("disk full");
      s.append(d);
      return Status::OK();
    }
    Status Commit() override {
      committed = true;
      return Status::OK();
    }
    uint64_t size() const override { return s.size(); }
    std::string s;
    bool fail = false;
    bool committed = false;
  } sink;
  TransferProgress written("w", "writing", 0);
  CountingWriter out(&sink, &written);
  ASSERT_OK(out.Append("hello"));
  ASSERT_OK(out.Append(" world"));
  sink.fail = true;
  EXPECT_FALSE(out.Append("lost").ok());  // what failed is not counted
  EXPECT_EQ(written.Snapshot().done_bytes, 11u);
  EXPECT_EQ(out.size(), 11u);
  ASSERT_OK(out.Commit());
  EXPECT_TRUE(sink.committed);
}

// Everything written to the read end of a pipe so far.
std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  return out;
}

TEST(ProgressLine, DrawsOnlyWhenEnabledAndErasesItself) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK), 0);
  {
    ProgressLine auto_detected(fds[1]);  // a pipe is no terminal
    EXPECT_FALSE(auto_detected.enabled());
    auto_detected.Show("nobody sees this");
  }
  EXPECT_EQ(Drain(fds[0]), "");

  std::atomic<uint64_t> polls{0};
  TransferProgress p("x", "copying", 1000);
  auto work = [&] {
    // Runs until the line was drawn a few times (no timing assumed).
    while (polls.load() < 3) {
      p.Add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::FromErrno(ENOSPC, "the work's own outcome");
  };
  auto poll = [&](ProgressSnapshot* s) {
    ++polls;
    *s = p.Snapshot();
    return true;
  };
  {
    ProgressLine line(fds[1], true);
    Status s = RunShowingProgress(&line, work, poll, std::chrono::milliseconds(10));
    EXPECT_EQ(s.posix_errno(), ENOSPC);
  }
  const std::string drawn = Drain(fds[0]);
  EXPECT_NE(drawn.find("\rcopying: "), std::string::npos) << drawn;
  EXPECT_NE(drawn.find(" of 1000 B ("), std::string::npos) << drawn;
  // The line is erased before the command prints its result.
  EXPECT_EQ(drawn.substr(drawn.size() - 4), "\r\x1b[K") << drawn;

  // Disabled: the work runs on the caller's thread and nothing is polled.
  polls = 3;
  ProgressLine off(fds[1], false);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  ASSERT_OK(RunShowingProgress(
      &off,
      [&] {
        ran_on = std::this_thread::get_id();
        return Status::OK();
      },
      [&](ProgressSnapshot*) {
        ADD_FAILURE() << "polled while disabled";
        return false;
      }));
  EXPECT_EQ(ran_on, caller);
  EXPECT_EQ(Drain(fds[0]), "");
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace kvfs::progress
