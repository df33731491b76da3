// handoff_bench: what one thread hand-off costs this machine: a thread
// blocking on a condition variable and another waking it, as Ganesha does
// between its RPC threads and a durable FSAL call does waiting for a sync
// (docs/benchmarks.md, "Where the server's CPU goes"). Two threads pass a
// turn back and forth ROUNDS times; prints the process's CPU and the wall
// time per hand-off, with the threads free to run on any core and pinned to
// one.
//
//   handoff_bench [ROUNDS=200000]

#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "bench/bench_program.h"

namespace {

// Passes the turn between two threads `rounds` times each way; prints one
// table row.
void PingPong(const char* placement, int rounds) {
  std::mutex mu;
  std::condition_variable cv;
  bool other_turn = false;
  const double cpu = kvfs::bench::ThisProcessCpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  std::thread other([&] {
    for (int i = 0; i < rounds; ++i) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return other_turn; });
      other_turn = false;
      cv.notify_one();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    std::unique_lock<std::mutex> lock(mu);
    other_turn = true;
    cv.notify_one();
    cv.wait(lock, [&] { return !other_turn; });
  }
  other.join();
  const double handoffs = 2.0 * rounds;
  std::printf("| %s | %.2f | %.2f |\n", placement,
              (kvfs::bench::ThisProcessCpuSeconds() - cpu) / handoffs * 1e6,
              kvfs::bench::SecondsSince(start) / handoffs * 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200000;
  if (rounds < 1) kvfs::bench::Die("ROUNDS must be positive");
  std::printf("| threads | CPU us per hand-off | wall us per hand-off |\n|---|---:|---:|\n");
  PingPong("on any core", rounds);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) kvfs::bench::Die("sched_setaffinity");
  PingPong("both on core 0", rounds);  // the new thread inherits the mask
  return 0;
}
