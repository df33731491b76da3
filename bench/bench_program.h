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

// What /proc/PID/stat says of process `pid`, all its threads, read at once.
struct ProcessStat {
  double cpu_seconds = 0;               // user + system
  unsigned long long minor_faults = 0;  // pages mapped without a disk read
};

// Reads /proc/PID/stat; zeros if the process is gone.
inline ProcessStat ReadProcessStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');  // the command name may hold spaces
  ProcessStat stat;
  if (close == std::string::npos) return stat;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  // Fields 3.. after the name, numbered as in proc(5): minflt is 10, utime
  // and stime (clock ticks) are 14 and 15.
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (fields >> f); ++i) {
    if (i == 10) stat.minor_faults = std::stoull(f);
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  stat.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return stat;
}

// User + system CPU seconds process `pid` (all its threads) has used so far,
// from /proc; 0 if it is gone.
inline double ProcessCpuSeconds(pid_t pid) { return ReadProcessStat(pid).cpu_seconds; }

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
