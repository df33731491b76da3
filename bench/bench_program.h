// What every benchmark program needs besides its measurement: stopping on an
// error with a message that names the program, and timing a phase.
#pragma once

#include <errno.h>  // program_invocation_short_name (GNU)

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

}  // namespace kvfs::bench
