// What every benchmark program needs besides its measurement: stopping on an
// error with a message that names the program, and timing a phase (wall
// clock and CPU).
#pragma once

#include <errno.h>  // program_invocation_short_name (GNU)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "common/status.h"

namespace kvfs::bench {

// Prints "PROGRAM: what" to stderr, followed by ": STATUS" unless `s` is OK,
// and exits with status 1. A benchmark that hits an error has no result.
[[noreturn]] inline void Die(const std::string& what, const Status& s = Status::OK()) {
  std::fprintf(stderr, "%s: %s%s%s\n", program_invocation_short_name, what.c_str(),
               s.ok() ? "" : ": ", s.ok() ? "" : s.ToString().c_str());
  std::exit(1);
}

// Die(what, s) unless `s` is OK.
inline void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what, s);
}

// Seconds of the steady clock since `start`.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// User + system CPU seconds this process has used so far.
inline double ThisProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Context switches (voluntary and involuntary) of all this process's
// threads so far, those that have ended included.
inline long ThisProcessContextSwitches() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

// Field `n` (1-based, as proc(5) numbers them; n >= 3) of /proc/PID/stat as a
// number; 0 if the process is gone.
inline unsigned long long ProcessStatField(pid_t pid, int n) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  for (int i = 3; i <= n && (fields >> f); ++i) {
    if (i == n) return std::stoull(f);
  }
  return 0;
}

// User + system CPU seconds process `pid` (all its threads) has used so far,
// from /proc; 0 if it is gone.
inline double ProcessCpuSeconds(pid_t pid) {
  const unsigned long long utime = ProcessStatField(pid, 14), stime = ProcessStatField(pid, 15);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Minor page faults (no disk read: a fresh page mapped, or one already in
// the page cache) of process `pid` so far, all its threads; 0 if it is gone.
inline unsigned long long ProcessMinorFaults(pid_t pid) { return ProcessStatField(pid, 10); }

// Context switches (voluntary and involuntary) of process `pid`'s living
// threads so far, summed from /proc/PID/task/*/status; 0 if it is gone. A
// thread that blocks (on a lock, a sync, a reply) and is woken counts one.
inline long ProcessContextSwitches(pid_t pid) {
  long total = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("voluntary_ctxt_switches:") ||
          line.starts_with("nonvoluntary_ctxt_switches:")) {
        total += std::atol(line.c_str() + line.find(':') + 1);
      }
    }
  }
  return total;
}

}  // namespace kvfs::bench
