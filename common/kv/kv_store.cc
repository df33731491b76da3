#include "common/kv/kv_store.h"

#include <utility>

#include "common/kv/error_iterator.h"

namespace kvfs {

const char* ColumnName(Column c) {
  switch (c) {
    case Column::kMeta:
      return "meta";
    case Column::kEntries:
      return "entries";
    case Column::kInodes:
      return "inodes";
    case Column::kBlocks:
      return "blocks";
  }
  return "unknown";
}

void WriteBatch::Put(Column c, std::string_view key, std::string_view value) {
  ops_.push_back(Op{OpType::kPut, c, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::Delete(Column c, std::string_view key) {
  ops_.push_back(Op{OpType::kDelete, c, std::string(key), std::string()});
  bytes_ += key.size();
}

void WriteBatch::DeleteRange(Column c, std::string_view begin, std::string_view end) {
  ops_.push_back(Op{OpType::kDeleteRange, c, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

void WriteBatch::Add(Column c, std::string_view key, int64_t delta) {
  std::string encoded = EncodeCounter(delta);
  bytes_ += key.size() + encoded.size();
  ops_.push_back(Op{OpType::kAdd, c, std::string(key), std::move(encoded)});
}

std::string EncodeCounter(int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  return out;
}

int64_t DecodeCounter(std::string_view value) {
  if (value.size() != 8) return 0;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(static_cast<uint8_t>(value[i])) << (8 * i);
  return static_cast<int64_t>(u);
}

Status KVStore::Put(Column c, std::string_view key, std::string_view value) {
  WriteBatch batch;
  batch.Put(c, key, value);
  return Write(WriteOptions(), batch);
}

Status KVStore::Delete(Column c, std::string_view key) {
  WriteBatch batch;
  batch.Delete(c, key);
  return Write(WriteOptions(), batch);
}

Status BulkLoadKeyOrder::Check(Column c, std::string_view key) const {
  const int i = static_cast<int>(c);
  if (i >= kNumColumns) return Status::InvalidArgument("bulk load: bad column");
  if (has_last_[i] && key <= last_[i]) {
    return Status::InvalidArgument(std::string("bulk load: keys of column ") + ColumnName(c) +
                                   " out of order");
  }
  return Status::OK();
}

void BulkLoadKeyOrder::Added(Column c, std::string_view key) {
  const int i = static_cast<int>(c);
  has_last_[i] = true;
  last_[i].assign(key);
}

namespace {

// The default BulkLoader: one WriteBatch, written synced by Commit().
class WriteBatchLoader final : public BulkLoader {
 public:
  explicit WriteBatchLoader(KVStore* store) : store_(store) {}

  Status Add(Column c, std::string_view key, std::string_view value) override {
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    KVFS_RETURN_IF_ERROR(order_.Check(c, key));
    order_.Added(c, key);
    batch_.Put(c, key, value);
    bytes_ += key.size() + value.size();
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    committed_ = true;
    WriteOptions wo;
    wo.sync = true;
    Status s = batch_.empty() ? Status::OK() : store_->Write(wo, batch_);
    batch_.Clear();
    return s;
  }

  uint64_t BytesAdded() const override { return bytes_; }

 private:
  KVStore* const store_;
  WriteBatch batch_;
  bool committed_ = false;
  uint64_t bytes_ = 0;
  BulkLoadKeyOrder order_;
};

class ErrorIterator final : public Iterator {
 public:
  explicit ErrorIterator(Status s) : status_(std::move(s)) {}

  void Seek(std::string_view) override {}
  void SeekBefore(std::string_view) override {}
  void Next() override {}
  bool Valid() const override { return false; }
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  Status status() const override { return status_; }

 private:
  const Status status_;
};

}  // namespace

std::vector<std::pair<std::string, uint64_t>> KVStore::Statistics() { return {}; }

Status KVStore::Checkpoint(const std::string& /*dir*/) {
  return Status::FromErrno(ENOTSUP, "the " + Name() +
                                        " backend cannot copy itself while open: stop the "
                                        "server and copy its directory");
}

Status KVStore::NewBulkLoader(const std::string& /*staging_dir*/,
                              std::unique_ptr<BulkLoader>* out) {
  *out = std::make_unique<WriteBatchLoader>(this);
  return Status::OK();
}

std::unique_ptr<Iterator> NewErrorIterator(Status s) {
  return std::make_unique<ErrorIterator>(std::move(s));
}

}  // namespace kvfs
