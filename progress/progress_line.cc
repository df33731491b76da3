#include "progress/progress_line.h"

#include <sys/ioctl.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace kvfs::progress {

namespace {

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a progress line is not worth an error
    off += static_cast<size_t>(n);
  }
}

}  // namespace

ProgressLine::ProgressLine(int fd) : ProgressLine(fd, ::isatty(fd) == 1) {}

ProgressLine::ProgressLine(int fd, bool enabled) : fd_(fd), enabled_(enabled) {}

ProgressLine::~ProgressLine() { Clear(); }

void ProgressLine::Show(const std::string& text) {
  if (!enabled_) return;
  std::string line = text;
  struct winsize ws;
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && line.size() >= ws.ws_col) {
    line.resize(ws.ws_col - 1);
  }
  // Carriage return, the text, then erase to the end of the line.
  WriteAll(fd_, "\r" + line + "\x1b[K");
  shown_ = true;
}

void ProgressLine::Clear() {
  if (!enabled_ || !shown_) return;
  WriteAll(fd_, "\r\x1b[K");
  shown_ = false;
}

Status RunShowingProgress(ProgressLine* line, const std::function<Status()>& work,
                          const ProgressPoll& poll, std::chrono::milliseconds interval) {
  if (!line->enabled()) return work();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status result;
  std::thread worker([&] {
    Status s = work();
    std::lock_guard<std::mutex> l(mu);
    result = std::move(s);
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    while (!cv.wait_for(l, interval, [&] { return done; })) {
      l.unlock();
      ProgressSnapshot snap;
      if (poll(&snap)) line->Show(snap.what + ": " + FormatProgress(snap));
      l.lock();
    }
  }
  worker.join();
  line->Clear();
  return result;
}

}  // namespace kvfs::progress
