#include "ingest/tree_walk.h"

#include <utility>

namespace kvfs::ingest {

namespace {

// Directory entries listed per ReadDir call.
constexpr size_t kListBatch = 1024;
// A batch is queued once it has this many entries or its files to read
// this many bytes, so it holds at most kBatchEntries paths and less than
// kBatchContentsBytes + kMaxReadBytes (512 KiB) of contents. With
// kMaxQueuedBatches queued, one the caller holds and the buffers of the one
// being listed, that is 3 MiB at most.
constexpr size_t kBatchEntries = 64;
constexpr size_t kBatchContentsBytes = 256 << 10;

}  // namespace

TreeWalk::TreeWalk(FileSystem* fs, const Attributes& top, std::string top_path,
                   std::function<bool(const Attributes&)> wants_contents)
    : fs_(fs),
      wants_contents_(std::move(wants_contents)),
      thread_([this, top, path = std::move(top_path)] { Run(top, path); }) {}

TreeWalk::~TreeWalk() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void TreeWalk::Run(const Attributes& top, const std::string& top_path) {
  const bool listed =
      Add(top, top_path + "/") && WalkContents(top.ino, top_path + "/") && Publish();
  std::unique_lock<std::mutex> lock(mu_);
  done_ = true;
  changed_.notify_all();
  // Help read what is still queued.
  while (listed && !stop_ && ReadAQueuedBatch(lock)) {
  }
}

bool TreeWalk::WalkContents(Ino dir, const std::string& prefix) {
  std::vector<std::pair<std::string, Attributes>> subdirs;
  std::vector<DirEntry> listed;
  uint64_t cookie = kStartCookie;
  for (bool eof = false; !eof;) {
    listed.clear();
    Status s = fs_->ReadDir(
        dir, cookie,
        [&](const DirEntry& de) {
          listed.push_back(de);
          return listed.size() < kListBatch;
        },
        &eof);
    if (!s.ok()) {
      // The entries before the error still go out, then the error.
      Publish();
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::move(s);
      return false;
    }
    for (const DirEntry& de : listed) {
      if (de.attrs.type == FileType::kDirectory) {
        subdirs.emplace_back(de.name, de.attrs);
      } else if (!Add(de.attrs, prefix + de.name)) {
        return false;
      }
    }
    if (!listed.empty()) cookie = listed.back().cookie;
  }
  for (const auto& [name, attrs] : subdirs) {
    const std::string path = prefix + name + "/";
    if (!Add(attrs, path) || !WalkContents(attrs.ino, path)) return false;
  }
  return true;
}

bool TreeWalk::Add(const Attributes& a, std::string path) {
  WalkEntry& e = listing_.entries.emplace_back();
  e.attrs = a;
  e.path = std::move(path);
  e.read = a.size > 0 && a.size <= kMaxReadBytes && wants_contents_(a);
  if (e.read) listing_bytes_ += a.size;
  if (listing_.entries.size() < kBatchEntries && listing_bytes_ < kBatchContentsBytes) return true;
  return Publish();
}

bool TreeWalk::Publish() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_ && queue_.size() >= kMaxQueuedBatches) {
    if (!ReadAQueuedBatch(lock)) changed_.wait(lock);
  }
  if (stop_) return false;
  if (listing_.entries.empty()) return true;
  queue_.emplace_back().batch = std::move(listing_);
  listing_ = WalkBatch();
  if (!spare_.empty()) {
    listing_ = std::move(spare_.back());
    spare_.pop_back();
  }
  listing_.entries.clear();
  listing_bytes_ = 0;
  changed_.notify_all();
  return true;
}

bool TreeWalk::ReadAQueuedBatch(std::unique_lock<std::mutex>& lock) {
  for (Slot& slot : queue_) {
    if (slot.state != Slot::State::kListed) continue;
    slot.state = Slot::State::kReading;
    lock.unlock();
    ReadContents(&slot.batch);
    lock.lock();
    slot.state = Slot::State::kRead;
    changed_.notify_all();
    return true;
  }
  return false;
}

void TreeWalk::ReadContents(WalkBatch* batch) {
  std::string& out = batch->contents;
  out.clear();
  for (WalkEntry& e : batch->entries) {
    if (!e.read) continue;
    e.contents_offset = out.size();
    e.read_status = fs_->ReadStream(e.attrs.ino, 0, e.attrs.size, [&](std::string_view piece) {
      out.append(piece);
      return Status::OK();
    });
    e.contents_size = out.size() - e.contents_offset;
  }
}

Status TreeWalk::Next(WalkBatch* batch) {
  std::unique_lock<std::mutex> lock(mu_);
  // At most kMaxQueuedBatches + 2 batches exist: their buffers go round.
  spare_.push_back(std::move(*batch));
  for (;;) {
    if (!queue_.empty() && queue_.front().state == Slot::State::kRead) break;
    if (queue_.empty() && done_) {
      batch->entries.clear();
      batch->contents.clear();
      return error_;
    }
    if (!ReadAQueuedBatch(lock)) changed_.wait(lock);
  }
  *batch = std::move(queue_.front().batch);
  queue_.pop_front();
  changed_.notify_all();
  return Status::OK();
}

}  // namespace kvfs::ingest
