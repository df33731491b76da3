#include "metrics/metered_file_system.h"

#include <chrono>
#include <utility>

#include "metrics/metrics.h"

namespace kvfs::metrics {
namespace {

using Clock = std::chrono::steady_clock;

class MeteredFileSystem final : public FileSystem {
 public:
  MeteredFileSystem(std::unique_ptr<FileSystem> base, Metrics* metrics)
      : base_(std::move(base)), metrics_(metrics) {}

  Status Lookup(Ino parent, std::string_view name, Attributes* out) override {
    return Timed(Op::kLookup, [&] { return base_->Lookup(parent, name, out); });
  }
  Status GetAttr(Ino ino, Attributes* out) override {
    return Timed(Op::kGetAttr, [&] { return base_->GetAttr(ino, out); });
  }
  Status SetAttr(Ino ino, const SetAttrRequest& req, Attributes* out) override {
    return Timed(Op::kSetAttr, [&] { return base_->SetAttr(ino, req, out); });
  }
  Status Create(Ino parent, std::string_view name, const NewObject& obj, bool exclusive,
                Attributes* out) override {
    return Timed(Op::kCreate, [&] { return base_->Create(parent, name, obj, exclusive, out); });
  }
  Status Mkdir(Ino parent, std::string_view name, const NewObject& obj, Attributes* out) override {
    return Timed(Op::kMkdir, [&] { return base_->Mkdir(parent, name, obj, out); });
  }
  Status Mknod(Ino parent, std::string_view name, FileType type, const NewObject& obj,
               uint64_t rdev, Attributes* out) override {
    return Timed(Op::kMknod, [&] { return base_->Mknod(parent, name, type, obj, rdev, out); });
  }
  Status Symlink(Ino parent, std::string_view name, std::string_view target, const NewObject& obj,
                 Attributes* out) override {
    return Timed(Op::kSymlink, [&] { return base_->Symlink(parent, name, target, obj, out); });
  }
  Status Readlink(Ino ino, std::string* target) override {
    return Timed(Op::kReadlink, [&] { return base_->Readlink(ino, target); });
  }
  Status Link(Ino ino, Ino new_parent, std::string_view new_name, Attributes* out) override {
    return Timed(Op::kLink, [&] { return base_->Link(ino, new_parent, new_name, out); });
  }
  Status Unlink(Ino parent, std::string_view name) override {
    return Timed(Op::kUnlink, [&] { return base_->Unlink(parent, name); });
  }
  Status Rmdir(Ino parent, std::string_view name) override {
    return Timed(Op::kRmdir, [&] { return base_->Rmdir(parent, name); });
  }
  Status Rename(Ino parent, std::string_view name, Ino new_parent,
                std::string_view new_name) override {
    return Timed(Op::kRename, [&] { return base_->Rename(parent, name, new_parent, new_name); });
  }
  Status Read(Ino ino, uint64_t offset, size_t size, std::string* out, bool* eof) override {
    Status s = Timed(Op::kRead, [&] { return base_->Read(ino, offset, size, out, eof); });
    if (s.ok()) metrics_->AddBytesRead(out->size());
    return s;
  }
  Status ReadStream(Ino ino, uint64_t offset, uint64_t length,
                    const std::function<Status(std::string_view)>& fn) override {
    uint64_t bytes = 0;
    Status s = Timed(Op::kRead, [&] {
      return base_->ReadStream(ino, offset, length, [&](std::string_view piece) {
        bytes += piece.size();
        return fn(piece);
      });
    });
    metrics_->AddBytesRead(bytes);
    return s;
  }
  Status Write(Ino ino, uint64_t offset, std::string_view data, Stability stability,
               Attributes* out) override {
    Status s = Timed(Op::kWrite, [&] { return base_->Write(ino, offset, data, stability, out); });
    if (s.ok()) metrics_->AddBytesWritten(data.size());
    return s;
  }
  Status DataExtents(Ino ino, uint64_t offset,
                     const std::function<bool(uint64_t offset, uint64_t length)>& fn) override {
    return Timed(Op::kDataExtents, [&] { return base_->DataExtents(ino, offset, fn); });
  }
  Status Fsync(Ino ino) override {
    return Timed(Op::kFsync, [&] { return base_->Fsync(ino); });
  }
  Status Sync() override {
    return Timed(Op::kSync, [&] { return base_->Sync(); });
  }
  Status OpenFile(Ino ino) override {
    return Timed(Op::kOpenFile, [&] { return base_->OpenFile(ino); });
  }
  Status CloseFile(Ino ino) override {
    return Timed(Op::kCloseFile, [&] { return base_->CloseFile(ino); });
  }
  Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn,
                 bool* eof) override {
    return Timed(Op::kReadDir, [&] { return base_->ReadDir(dir, cookie, fn, eof); });
  }
  Status CookieOf(Ino dir, std::string_view name, uint64_t* cookie) override {
    return Timed(Op::kCookieOf, [&] { return base_->CookieOf(dir, name, cookie); });
  }
  Status StatFs(StatFsInfo* out) override {
    return Timed(Op::kStatFs, [&] { return base_->StatFs(out); });
  }
  // Whole-tree operations (ingest, the cache manager) are not counted here:
  // the cache manager reports its loads, evictions and write-backs itself.
  TreeLifecycle* trees() override { return base_->trees(); }
  KVStore* store() override { return base_->store(); }

 private:
  template <typename Fn>
  Status Timed(Op op, Fn&& fn) {
    const Clock::time_point start = Clock::now();
    Status s = fn();
    metrics_->RecordOperation(op, std::chrono::duration<double>(Clock::now() - start).count(),
                              s.ok());
    return s;
  }

  const std::unique_ptr<FileSystem> base_;
  Metrics* const metrics_;
};

}  // namespace

std::unique_ptr<FileSystem> NewMeteredFileSystem(std::unique_ptr<FileSystem> base,
                                                 Metrics* metrics) {
  return std::make_unique<MeteredFileSystem>(std::move(base), metrics);
}

}  // namespace kvfs::metrics
