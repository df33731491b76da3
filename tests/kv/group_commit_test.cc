// Tests of GroupCommit: every Sync() is covered by a sync_fn call that
// started after it, and concurrent callers share calls.
#include "common/kv/group_commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace kvfs {
namespace {

using namespace std::chrono_literals;

// Waits (up to 10 s) until pred() holds.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(GroupCommitTest, SingleCallerRunsSyncFnOnce) {
  int calls = 0;
  GroupCommit gc([&] {
    ++calls;
    return Status::OK();
  });
  EXPECT_TRUE(gc.Sync().ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(gc.Sync().ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(gc.SyncCalls(), 2u);
}

TEST(GroupCommitTest, ErrorsReachTheCallerAndDoNotStick) {
  int calls = 0;
  GroupCommit gc([&] { return ++calls == 1 ? Status::IOError("disk on fire") : Status::OK(); });
  Status s = gc.Sync();
  EXPECT_EQ(s.posix_errno(), EIO);
  EXPECT_EQ(s.message(), "disk on fire");
  EXPECT_TRUE(gc.Sync().ok());
}

// Callers arriving while a sync is in flight must not be satisfied by it (it
// may predate their writes): they wait for the next call, which they share,
// and they get that call's result.
TEST(GroupCommitTest, LateArrivalsWaitForTheNextCallAndShareIt) {
  std::promise<void> release_first;
  std::shared_future<void> first_released = release_first.get_future().share();
  std::atomic<int> calls{0};
  GroupCommit gc([&] {
    const int n = ++calls;
    if (n == 1) {
      first_released.wait();
      return Status::OK();
    }
    return Status::IOError("call " + std::to_string(n));
  });

  auto leader = std::async(std::launch::async, [&] { return gc.Sync(); });
  ASSERT_TRUE(Eventually([&] { return calls.load() == 1; }));
  auto follower1 = std::async(std::launch::async, [&] { return gc.Sync(); });
  auto follower2 = std::async(std::launch::async, [&] { return gc.Sync(); });
  ASSERT_TRUE(Eventually([&] { return gc.Waiters() == 2; }));
  // Nobody returns while the first call is blocked.
  EXPECT_EQ(follower1.wait_for(20ms), std::future_status::timeout);

  release_first.set_value();
  EXPECT_TRUE(leader.get().ok());
  Status s1 = follower1.get();
  Status s2 = follower2.get();
  EXPECT_EQ(s1.message(), "call 2");
  EXPECT_EQ(s2.message(), "call 2");
  EXPECT_EQ(gc.SyncCalls(), 2u);
}

// The durability model: a write "returns" when it bumps `written`; sync_fn
// makes durable what had been written when it started. After Sync() returns,
// the caller's own write must be durable.
TEST(GroupCommitTest, EveryWriteBeforeSyncIsDurableWhenItReturns) {
  std::atomic<uint64_t> written{0};
  std::mutex mu;
  uint64_t durable = 0;
  GroupCommit gc([&] {
    const uint64_t covered = written.load();
    std::this_thread::sleep_for(200us);
    std::lock_guard<std::mutex> lock(mu);
    durable = std::max(durable, covered);
    return Status::OK();
  });

  constexpr int kThreads = 8;
  constexpr int kSyncsPerThread = 300;
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kSyncsPerThread; ++i) {
        const uint64_t mine = ++written;
        if (!gc.Sync().ok()) ++violations;
        std::lock_guard<std::mutex> lock(mu);
        if (durable < mine) ++violations;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  // Calls were shared: far fewer sync_fn calls than Sync() calls.
  EXPECT_LT(gc.SyncCalls(), static_cast<uint64_t>(kThreads * kSyncsPerThread));
  EXPECT_EQ(gc.Waiters(), 0);
}

}  // namespace
}  // namespace kvfs
