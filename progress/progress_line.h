// Progress shown to a person at a terminal while a command waits, and
// nothing at all to a script: the line is drawn only when its descriptor is
// a terminal, and erased before the command prints its result.
#pragma once

#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"
#include "progress/transfer_progress.h"

namespace kvfs::progress {

// One line of a terminal, rewritten in place.
class ProgressLine {
 public:
  // Draws on `fd` if it is a terminal; otherwise every call does nothing.
  explicit ProgressLine(int fd = STDERR_FILENO);
  // Draws on `fd` if `enabled` (for tests and --progress).
  ProgressLine(int fd, bool enabled);
  // Erases the line if something is on it.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  // Replaces the line with `text` (cut to the terminal's width).
  void Show(const std::string& text);
  // Erases the line.
  void Clear();

 private:
  const int fd_;
  const bool enabled_;
  bool shown_ = false;
};

// Asks for the state of a transfer: true and *out filled if it is in
// progress, false if it is not (not begun yet, or over).
using ProgressPoll = std::function<bool(ProgressSnapshot* out)>;

// Runs `work` on a thread of its own and, while it runs, shows what `poll`
// reports on `line` every `interval` (nothing if the line is disabled: then
// `work` simply runs on this thread). Returns what `work` returned, with the
// line erased.
Status RunShowingProgress(ProgressLine* line, const std::function<Status()>& work,
                          const ProgressPoll& poll,
                          std::chrono::milliseconds interval = std::chrono::milliseconds(500));

}  // namespace kvfs::progress
