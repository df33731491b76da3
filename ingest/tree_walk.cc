#include "ingest/tree_walk.h"

#include <utility>

namespace kvfs::ingest {

namespace {

// Directory entries listed per ReadDir call.
constexpr size_t kListBatch = 1024;
// A batch is handed over once it has this many entries or this many bytes
// of contents, so it holds at most kBatchEntries paths and less than
// kBatchContentsBytes + kMaxReadBytes (512 KiB) of contents. With
// kMaxQueuedBatches queued, one being filled and one the caller holds, that
// is 2.5 MiB of contents at most.
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
  if (Add(top, top_path + "/") && WalkContents(top.ino, top_path + "/")) Publish();
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  changed_.notify_all();
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
  WalkEntry& e = filling_.entries.emplace_back();
  e.attrs = a;
  e.path = std::move(path);
  // Only while ahead of the caller (tree_walk.h).
  if (queued_when_published_ > 0 && a.size > 0 && a.size <= kMaxReadBytes && wants_contents_(a)) {
    std::string& out = filling_.contents;
    e.read = true;
    e.contents_offset = out.size();
    e.read_status = fs_->ReadStream(a.ino, 0, a.size, [&](std::string_view piece) {
      out.append(piece);
      return Status::OK();
    });
    e.contents_size = out.size() - e.contents_offset;
  }
  if (filling_.entries.size() < kBatchEntries && filling_.contents.size() < kBatchContentsBytes) {
    return true;
  }
  return Publish();
}

bool TreeWalk::Publish() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return stop_ || queue_.size() < kMaxQueuedBatches; });
  if (stop_) return false;
  if (filling_.entries.empty()) return true;
  queue_.push_back(std::move(filling_));
  queued_when_published_ = queue_.size() - 1;
  filling_ = WalkBatch();
  if (!spare_.empty()) {
    filling_ = std::move(spare_.back());
    spare_.pop_back();
  }
  filling_.entries.clear();
  filling_.contents.clear();
  changed_.notify_all();
  return true;
}

Status TreeWalk::Next(WalkBatch* batch) {
  std::unique_lock<std::mutex> lock(mu_);
  // At most kMaxQueuedBatches + 2 batches exist: their buffers go round.
  spare_.push_back(std::move(*batch));
  changed_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (queue_.empty()) {
    batch->entries.clear();
    batch->contents.clear();
    return error_;
  }
  *batch = std::move(queue_.front());
  queue_.pop_front();
  changed_.notify_all();
  return Status::OK();
}

}  // namespace kvfs::ingest
