#include "ingest/external_sorter.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>

namespace kvfs::ingest {

namespace {

constexpr size_t kIoBuffer = 1 << 20;

// A run file: records of [key size:4 LE][value size:4 LE][key][value].
void PutSize(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetSize(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

// Reads one run file record by record.
class RunReader {
 public:
  RunReader(File f, std::string path) : file_(std::move(f)), path_(std::move(path)) {
    buffer_ = std::make_unique<char[]>(kIoBuffer);
    std::setvbuf(file_.get(), buffer_.get(), _IOFBF, kIoBuffer);
  }

  // Reads the next record; *end at the end of the file.
  Status Next(bool* end) {
    char sizes[8];
    size_t n = std::fread(sizes, 1, sizeof(sizes), file_.get());
    if (n == 0 && std::feof(file_.get())) {
      *end = true;
      return Status::OK();
    }
    if (n != sizeof(sizes)) return Truncated();
    key_.resize(GetSize(sizes));
    value_.resize(GetSize(sizes + 4));
    if (std::fread(key_.data(), 1, key_.size(), file_.get()) != key_.size() ||
        std::fread(value_.data(), 1, value_.size(), file_.get()) != value_.size()) {
      return Truncated();
    }
    *end = false;
    return Status::OK();
  }

  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  Status Truncated() const {
    if (std::ferror(file_.get())) return Status::FromErrno(errno, "read sort run " + path_);
    return Status::IOError("sort run " + path_ + " is truncated");
  }

  File file_;
  std::string path_;
  std::unique_ptr<char[]> buffer_;
  std::string key_, value_;
};

}  // namespace

ExternalSorter::ExternalSorter(std::string dir, std::string prefix, size_t memory_budget)
    : dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      budget_(std::max<size_t>(memory_budget, 1)) {}

ExternalSorter::~ExternalSorter() {
  for (const std::string& run : runs_) std::remove(run.c_str());
}

Status ExternalSorter::Add(std::string_view key, std::string_view value) {
  if (finished_) return Status::InvalidArgument("sorter already finished");
  if (key.size() > UINT32_MAX || value.size() > UINT32_MAX) {
    return Status::InvalidArgument("sort record too large");
  }
  const size_t bytes = key.size() + value.size();
  if (!items_.empty() && arena_.size() + bytes + items_.size() * sizeof(Item) > budget_) {
    KVFS_RETURN_IF_ERROR(Spill());
  }
  // Reserved once (pages are only touched as they fill), so the arena never
  // reallocates to twice the budget.
  if (arena_.capacity() < budget_) arena_.reserve(budget_);
  items_.push_back(
      Item{arena_.size(), static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size())});
  arena_.append(key);
  arena_.append(value);
  ++count_;
  return Status::OK();
}

void ExternalSorter::SortBuffer() {
  std::stable_sort(items_.begin(), items_.end(),
                   [this](const Item& a, const Item& b) { return KeyOf(a) < KeyOf(b); });
}

Status ExternalSorter::Spill() {
  SortBuffer();
  std::string path = dir_ + "/" + prefix_ + "-" + std::to_string(runs_.size()) + ".run";
  File f(std::fopen(path.c_str(), "wbx"));
  if (!f) return Status::FromErrno(errno, "create sort run " + path);
  runs_.push_back(path);  // removed by the destructor from now on
  auto buffer = std::make_unique<char[]>(kIoBuffer);
  std::setvbuf(f.get(), buffer.get(), _IOFBF, kIoBuffer);
  for (const Item& item : items_) {
    char sizes[8];
    PutSize(sizes, item.key_size);
    PutSize(sizes + 4, item.value_size);
    const size_t record = item.key_size + item.value_size;
    if (std::fwrite(sizes, 1, sizeof(sizes), f.get()) != sizeof(sizes) ||
        std::fwrite(arena_.data() + item.offset, 1, record, f.get()) != record) {
      return Status::FromErrno(errno, "write sort run " + path);
    }
  }
  if (std::fflush(f.get()) != 0) return Status::FromErrno(errno, "write sort run " + path);
  f.reset();
  items_.clear();
  arena_.clear();
  return Status::OK();
}

Status ExternalSorter::Finish(
    const std::function<Status(std::string_view key, std::string_view value)>& fn) {
  if (finished_) return Status::InvalidArgument("sorter already finished");
  finished_ = true;
  SortBuffer();
  if (runs_.empty()) {
    for (const Item& item : items_) KVFS_RETURN_IF_ERROR(fn(KeyOf(item), ValueOf(item)));
    return Status::OK();
  }
  // K-way merge of the runs (sources 0..n-1, oldest first) and the buffer
  // (source n). Ties go to the lower source: the pair added first.
  std::vector<std::unique_ptr<RunReader>> readers;
  for (const std::string& path : runs_) {
    File f(std::fopen(path.c_str(), "rb"));
    if (!f) return Status::FromErrno(errno, "open sort run " + path);
    readers.push_back(std::make_unique<RunReader>(std::move(f), path));
  }
  const size_t buffer_source = readers.size();
  size_t buffer_pos = 0;
  auto key_of = [&](size_t source) {
    return source == buffer_source ? KeyOf(items_[buffer_pos]) : readers[source]->key();
  };
  auto greater = [&](size_t a, size_t b) {
    int c = key_of(a).compare(key_of(b));
    return c > 0 || (c == 0 && a > b);
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(greater)> heap(greater);
  for (size_t i = 0; i < readers.size(); ++i) {
    bool end = true;  // set by Next; initialized for GCC 12's -O3 -Wmaybe-uninitialized
    KVFS_RETURN_IF_ERROR(readers[i]->Next(&end));
    if (!end) heap.push(i);
  }
  if (!items_.empty()) heap.push(buffer_source);
  while (!heap.empty()) {
    const size_t source = heap.top();
    heap.pop();
    if (source == buffer_source) {
      const Item& item = items_[buffer_pos];
      KVFS_RETURN_IF_ERROR(fn(KeyOf(item), ValueOf(item)));
      if (++buffer_pos < items_.size()) heap.push(buffer_source);
    } else {
      KVFS_RETURN_IF_ERROR(fn(readers[source]->key(), readers[source]->value()));
      bool end = true;
      KVFS_RETURN_IF_ERROR(readers[source]->Next(&end));
      if (!end) heap.push(source);
    }
  }
  return Status::OK();
}

}  // namespace kvfs::ingest
