// The LMDB backend. Design (layout, durability, concurrency, emulated
// operations, bulk loads, options): see lmdb_store.h.
#include "common/kv/lmdb/lmdb_store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/kv/error_iterator.h"
#include "common/kv/kv_plugin.h"
#include "common/kv/write_queue.h"
#include "common/plugin/plugin_options.h"

namespace kvfs {
namespace {

constexpr uint64_t kDefaultMapSize = uint64_t{1} << 40;  // 1 TiB of address space
constexpr uint64_t kMinMapSize = uint64_t{1} << 20;
constexpr int64_t kDefaultMaxReaders = 1024;
constexpr int64_t kMaxMaxReaders = 1 << 16;
// Idle read transactions kept for reuse by Get and iterators.
constexpr size_t kMaxPooledReadTxns = 32;
// Every stored key is this byte followed by the user's key (LMDB refuses
// empty keys).
constexpr char kKeyPrefix = '\0';
// Buffer for a stored key: LMDB's compile-time limit is 511 bytes.
constexpr size_t kKeyBufSize = 512;
// Buffer size of the bulk loader's staging file, both ways.
constexpr size_t kStagingBufferBytes = 1 << 20;

bool ValidColumn(Column c) { return static_cast<int>(c) < kNumColumns; }

std::string_view ToView(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// The user's key of a stored key (without the prefix byte).
std::string_view UserKey(const MDB_val& stored) {
  std::string_view k = ToView(stored);
  if (!k.empty()) k.remove_prefix(1);
  return k;
}

// Writes the stored form of `key` into buf and points *out at it. The caller
// has checked key.size() < kKeyBufSize.
void EncodeKey(std::string_view key, char (&buf)[kKeyBufSize], MDB_val* out) {
  buf[0] = kKeyPrefix;
  std::memcpy(buf + 1, key.data(), key.size());
  out->mv_data = buf;
  out->mv_size = key.size() + 1;
}

// What error messages say about the store.
struct StoreInfo {
  std::string path;
  uint64_t map_size = 0;
  // Longest user key: mdb_env_get_maxkeysize() minus the prefix byte.
  size_t max_key = 0;
};

// An LMDB error as a Status: MDB_MAP_FULL and a full disk are ENOSPC, keys
// or values LMDB cannot hold InvalidArgument, the rest IOError; the message
// names the operation, the store's path and LMDB's explanation.
Status MdbError(int rc, std::string_view what, const StoreInfo& info) {
  std::string msg = "lmdb store at " + info.path + ": " + std::string(what) + ": ";
  msg += mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
      return Status::FromErrno(
          ENOSPC, msg + " (the data reached map_size = " + std::to_string(info.map_size) +
                      " bytes; reopen the store with a larger map_size)");
    case ENOSPC:
    case EDQUOT:
      return Status::FromErrno(rc, msg);
    case MDB_BAD_VALSIZE:
      return Status::InvalidArgument(msg);
    case MDB_READERS_FULL:
      return Status::IOError(msg + " (raise the max_readers option)");
    default:
      return Status::IOError(msg);
  }
}

// Positions `cursor` at the first key >= target and sets *k and *v to it.
// Returns 0, MDB_NOTFOUND (no such key) or an LMDB error. A target longer
// than any key can be is handled: the keys >= it are those > its prefix of
// max_key bytes.
int SeekAtOrAfter(MDB_cursor* cursor, std::string_view target, size_t max_key, MDB_val* k,
                  MDB_val* v) {
  const bool too_long = target.size() > max_key;
  if (too_long) target = target.substr(0, max_key);
  char buf[kKeyBufSize];
  EncodeKey(target, buf, k);
  int rc = mdb_cursor_get(cursor, k, v, MDB_SET_RANGE);
  if (rc == 0 && too_long && UserKey(*k) == target) rc = mdb_cursor_get(cursor, k, v, MDB_NEXT);
  return rc;
}

// Idle read transactions (reset, holding a reader slot) for reuse:
// mdb_txn_renew of a pooled one avoids the reader table's mutex that
// mdb_txn_begin takes. Thread-safe.
class ReadTxnPool {
 public:
  explicit ReadTxnPool(MDB_env* env) : env_(env) {}
  ~ReadTxnPool() {
    for (MDB_txn* txn : idle_) mdb_txn_abort(txn);
  }

  ReadTxnPool(const ReadTxnPool&) = delete;
  ReadTxnPool& operator=(const ReadTxnPool&) = delete;

  // Sets *out to a read transaction on the latest committed state; returns
  // an LMDB error code (0 on success).
  int Acquire(MDB_txn** out) {
    MDB_txn* txn = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        txn = idle_.back();
        idle_.pop_back();
      }
    }
    if (txn != nullptr) {
      const int rc = mdb_txn_renew(txn);
      if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
      }
      *out = txn;
      return 0;
    }
    return mdb_txn_begin(env_, nullptr, MDB_RDONLY, out);
  }

  // Ends `txn` (from Acquire), keeping it for reuse if the pool has room.
  void Release(MDB_txn* txn) {
    mdb_txn_reset(txn);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() < kMaxPooledReadTxns) {
        idle_.push_back(txn);
        return;
      }
    }
    mdb_txn_abort(txn);
  }

 private:
  MDB_env* const env_;
  std::mutex mu_;
  std::vector<MDB_txn*> idle_;  // guarded by mu_
};

// A read transaction shared by a snapshot and the iterators reading through
// it (or owned by one iterator). LMDB transactions must not be used by two
// threads at once: hold mu() around every LMDB call on txn(). Released to
// the pool when the last owner lets go.
class ReadTxn {
 public:
  ReadTxn(ReadTxnPool* pool, MDB_txn* txn) : pool_(pool), txn_(txn) {}
  ~ReadTxn() { pool_->Release(txn_); }

  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  MDB_txn* txn() const { return txn_; }
  std::mutex& mu() const { return mu_; }

 private:
  ReadTxnPool* const pool_;
  MDB_txn* const txn_;
  mutable std::mutex mu_;
};

// A snapshot: a read transaction begun when it was taken. If that failed
// (e.g. no free reader slot), it holds the error instead, which every read
// through it returns.
class LmdbSnapshot final : public Snapshot {
 public:
  LmdbSnapshot(const KVStore* store, std::shared_ptr<ReadTxn> txn, Status error)
      : store_(store), txn_(std::move(txn)), error_(std::move(error)) {}

  const KVStore* store() const { return store_; }
  // Null iff error() is not OK.
  const std::shared_ptr<ReadTxn>& txn() const { return txn_; }
  const Status& error() const { return error_; }

 private:
  const KVStore* const store_;  // the store it was taken from
  const std::shared_ptr<ReadTxn> txn_;
  const Status error_;
};

// Iterates one column through a cursor of a read transaction it owns or
// shares with a snapshot.
class LmdbIterator final : public Iterator {
 public:
  // Takes ownership of `cursor`, opened in txn's transaction.
  LmdbIterator(std::shared_ptr<ReadTxn> txn, MDB_cursor* cursor, std::string upper_bound,
               const StoreInfo* info)
      : txn_(std::move(txn)), cursor_(cursor), upper_bound_(std::move(upper_bound)), info_(info) {}

  ~LmdbIterator() override {
    std::lock_guard<std::mutex> lock(txn_->mu());
    mdb_cursor_close(cursor_);
  }

  LmdbIterator(const LmdbIterator&) = delete;
  LmdbIterator& operator=(const LmdbIterator&) = delete;

  void Seek(std::string_view target) override {
    std::lock_guard<std::mutex> lock(txn_->mu());
    MDB_val k, v;
    Settle(SeekAtOrAfter(cursor_, target, info_->max_key, &k, &v), k, v, "seek");
  }

  void SeekBefore(std::string_view target) override {
    // Keys at or past the upper bound are invisible, so the bound acts as a
    // smaller target.
    if (!upper_bound_.empty() && (target.empty() || std::string_view(upper_bound_) < target)) {
      target = upper_bound_;
    }
    std::lock_guard<std::mutex> lock(txn_->mu());
    MDB_val k, v;
    int rc;
    if (target.empty()) {
      rc = mdb_cursor_get(cursor_, &k, &v, MDB_LAST);
    } else {
      rc = SeekAtOrAfter(cursor_, target, info_->max_key, &k, &v);
      if (rc == 0) {
        rc = mdb_cursor_get(cursor_, &k, &v, MDB_PREV);
      } else if (rc == MDB_NOTFOUND) {
        // Every key is < target.
        rc = mdb_cursor_get(cursor_, &k, &v, MDB_LAST);
      }
    }
    Settle(rc, k, v, "seek before");
  }

  void Next() override {
    if (!valid_) return;
    std::lock_guard<std::mutex> lock(txn_->mu());
    MDB_val k, v;
    Settle(mdb_cursor_get(cursor_, &k, &v, MDB_NEXT), k, v, "next");
  }

  bool Valid() const override { return valid_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

 private:
  // Records the outcome of a cursor move that returned rc and (if 0) k, v.
  void Settle(int rc, const MDB_val& k, const MDB_val& v, std::string_view what) {
    valid_ = false;
    status_ = Status::OK();
    if (rc == MDB_NOTFOUND) return;
    if (rc != 0) {
      status_ = MdbError(rc, std::string("iterator ") + std::string(what), *info_);
      return;
    }
    key_ = UserKey(k);
    value_ = ToView(v);
    valid_ = upper_bound_.empty() || key_ < std::string_view(upper_bound_);
  }

  const std::shared_ptr<ReadTxn> txn_;
  MDB_cursor* const cursor_;
  const std::string upper_bound_;
  const StoreInfo* const info_;
  bool valid_ = false;
  std::string_view key_;    // into the memory map, while valid_
  std::string_view value_;  // likewise
  Status status_;
};

// Writes all of buf to fd; errno on failure.
int WriteAll(int fd, const char* buf, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// Reads the bulk loader's staging file back, handing out contiguous byte
// ranges that stay valid until the next call.
class StagingReader {
 public:
  explicit StagingReader(int fd) : fd_(fd), buf_(kStagingBufferBytes) {}

  // Points *p at the next n bytes of the file.
  Status Take(size_t n, const char** p) {
    if (end_ - begin_ < n) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (buf_.size() < n) buf_.resize(n);
      while (end_ < n) {
        const ssize_t r = pread(fd_, buf_.data() + end_, buf_.size() - end_, offset_);
        if (r < 0) {
          if (errno == EINTR) continue;
          return Status::FromErrno(errno, "bulk load: read staging file");
        }
        if (r == 0) return Status::IOError("bulk load: staging file truncated");
        end_ += static_cast<size_t>(r);
        offset_ += static_cast<uint64_t>(r);
      }
    }
    *p = buf_.data() + begin_;
    begin_ += n;
    return Status::OK();
  }

 private:
  const int fd_;
  std::vector<char> buf_;
  size_t begin_ = 0;  // unread bytes are buf_[begin_, end_)
  size_t end_ = 0;
  uint64_t offset_ = 0;  // file offset of buf_[end_]
};

// A record of the staging file: this header, then the key and the value.
struct StagedHeader {
  uint8_t column;
  uint32_t key_size;
  uint32_t value_size;
};
constexpr size_t kStagedHeaderBytes = 9;

void EncodeStagedHeader(const StagedHeader& h, char* out) {
  out[0] = static_cast<char>(h.column);
  std::memcpy(out + 1, &h.key_size, 4);
  std::memcpy(out + 5, &h.value_size, 4);
}

StagedHeader DecodeStagedHeader(const char* in) {
  StagedHeader h;
  h.column = static_cast<uint8_t>(in[0]);
  std::memcpy(&h.key_size, in + 1, 4);
  std::memcpy(&h.value_size, in + 5, 4);
  return h;
}

// The open environment and the LOCK file that makes it ours, closed on
// destruction.
class EnvHandle {
 public:
  EnvHandle(MDB_env* env, int lock_fd) : env_(env), lock_fd_(lock_fd) {}
  ~EnvHandle() {
    mdb_env_close(env_);
    close(lock_fd_);  // releases the flock
  }

  EnvHandle(const EnvHandle&) = delete;
  EnvHandle& operator=(const EnvHandle&) = delete;

  MDB_env* get() const { return env_; }

 private:
  MDB_env* const env_;
  const int lock_fd_;
};

class LmdbStore final : public KVStore {
 public:
  // Takes ownership of env (open, with the column databases in dbis) and of
  // lock_fd (the flock()ed LOCK file).
  LmdbStore(MDB_env* env, std::array<MDB_dbi, kNumColumns> dbis, int lock_fd, StoreInfo info)
      : env_(env, lock_fd),
        dbis_(dbis),
        info_(std::move(info)),
        read_pool_(env),
        queue_([this](std::span<const WriteBatch* const> batches) { return Apply(batches); }) {}

  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  Status Get(const ReadOptions& opts, Column c, std::string_view key, std::string* value) override {
    if (!ValidColumn(c)) return Status::InvalidArgument("lmdb store: bad column");
    std::shared_ptr<ReadTxn> snap_txn;
    KVFS_RETURN_IF_ERROR(Unwrap(opts.snapshot, &snap_txn));
    if (key.size() > info_.max_key) return Status::NotFound("key not found");
    char buf[kKeyBufSize];
    MDB_val k, v;
    EncodeKey(key, buf, &k);
    int rc;
    if (snap_txn != nullptr) {
      std::lock_guard<std::mutex> lock(snap_txn->mu());
      rc = mdb_get(snap_txn->txn(), Dbi(c), &k, &v);
      if (rc == 0) value->assign(ToView(v));
    } else {
      MDB_txn* txn = nullptr;
      rc = read_pool_.Acquire(&txn);
      if (rc != 0) return MdbError(rc, "begin read transaction", info_);
      rc = mdb_get(txn, Dbi(c), &k, &v);
      if (rc == 0) value->assign(ToView(v));
      read_pool_.Release(txn);
    }
    if (rc == MDB_NOTFOUND) return Status::NotFound("key not found");
    if (rc != 0) return MdbError(rc, "get", info_);
    return Status::OK();
  }

  Status Write(const WriteOptions& /*opts: every write is durable*/,
               const WriteBatch& batch) override {
    // Validate first, so that a bad batch never joins (and fails) a group.
    for (const auto& op : batch.ops()) {
      if (!ValidColumn(op.column)) return Status::InvalidArgument("lmdb store: bad column");
      switch (op.type) {
        case WriteBatch::OpType::kPut:
        case WriteBatch::OpType::kAdd:
          KVFS_RETURN_IF_ERROR(CheckKey(op.key));
          break;
        case WriteBatch::OpType::kDeleteRange:
          if (op.key > op.value) return Status::InvalidArgument("DeleteRange: begin > end");
          break;
        case WriteBatch::OpType::kDelete:
          break;
      }
    }
    if (batch.empty()) return Status::OK();
    return queue_.Write(batch);
  }

  std::unique_ptr<Iterator> NewIterator(Column c, const IteratorOptions& opts) override {
    if (!ValidColumn(c)) return NewErrorIterator(Status::InvalidArgument("lmdb store: bad column"));
    std::shared_ptr<ReadTxn> txn;
    Status s = Unwrap(opts.snapshot, &txn);
    if (!s.ok()) return NewErrorIterator(std::move(s));
    if (txn == nullptr) {
      s = NewReadTxn(&txn);
      if (!s.ok()) return NewErrorIterator(std::move(s));
    }
    MDB_cursor* cursor = nullptr;
    int rc;
    {
      std::lock_guard<std::mutex> lock(txn->mu());
      rc = mdb_cursor_open(txn->txn(), Dbi(c), &cursor);
    }
    if (rc != 0) return NewErrorIterator(MdbError(rc, "open cursor", info_));
    return std::make_unique<LmdbIterator>(std::move(txn), cursor, opts.upper_bound, &info_);
  }

  std::unique_ptr<Snapshot> GetSnapshot() override {
    std::shared_ptr<ReadTxn> txn;
    Status s = NewReadTxn(&txn);
    return std::make_unique<LmdbSnapshot>(this, std::move(txn), std::move(s));
  }

  // Every Write is durable when it returns.
  Status Sync() override { return Status::OK(); }

  std::string Name() const override { return "lmdb"; }

  Status NewBulkLoader(const std::string& staging_dir, std::unique_ptr<BulkLoader>* out) override;

  // Puts the `records` records of the staging file `fd` (see LmdbLoader) in
  // one write transaction and commits it.
  Status LoadStaged(int fd, uint64_t records);

  const StoreInfo& info() const { return info_; }

 private:
  MDB_dbi Dbi(Column c) const { return dbis_[static_cast<int>(c)]; }

  Status CheckKey(std::string_view key) const {
    if (key.size() <= info_.max_key) return Status::OK();
    return Status::InvalidArgument("lmdb store: key of " + std::to_string(key.size()) +
                                   " bytes is longer than the limit of " +
                                   std::to_string(info_.max_key));
  }

  // A read transaction of its own on the latest state.
  Status NewReadTxn(std::shared_ptr<ReadTxn>* out) {
    MDB_txn* txn = nullptr;
    const int rc = read_pool_.Acquire(&txn);
    if (rc != 0) return MdbError(rc, "begin read transaction", info_);
    *out = std::make_shared<ReadTxn>(&read_pool_, txn);
    return Status::OK();
  }

  // Sets *out to the transaction behind `snapshot` (null for null).
  Status Unwrap(const Snapshot* snapshot, std::shared_ptr<ReadTxn>* out) const {
    out->reset();
    if (snapshot == nullptr) return Status::OK();
    auto* snap = dynamic_cast<const LmdbSnapshot*>(snapshot);
    if (snap == nullptr || snap->store() != this) {
      return Status::InvalidArgument("snapshot of another store");
    }
    if (!snap->error().ok()) return snap->error();
    *out = snap->txn();
    return Status::OK();
  }

  // The WriteQueue's apply function: every batch in one write transaction,
  // committed with a full sync. Aborts (applying nothing) on any error.
  Status Apply(std::span<const WriteBatch* const> batches) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_.get(), nullptr, 0, &txn);
    if (rc != 0) return MdbError(rc, "begin write transaction", info_);
    for (const WriteBatch* batch : batches) {
      for (const auto& op : batch->ops()) {
        Status s = ApplyOp(txn, op);
        if (!s.ok()) {
          mdb_txn_abort(txn);
          return s;
        }
      }
    }
    rc = mdb_txn_commit(txn);  // frees txn even if it fails
    if (rc != 0) return MdbError(rc, "commit", info_);
    return Status::OK();
  }

  Status ApplyOp(MDB_txn* txn, const WriteBatch::Op& op) {
    const MDB_dbi dbi = Dbi(op.column);
    char buf[kKeyBufSize];
    MDB_val k;
    int rc = 0;
    switch (op.type) {
      case WriteBatch::OpType::kPut: {
        KVFS_RETURN_IF_ERROR(CheckKey(op.key));
        EncodeKey(op.key, buf, &k);
        MDB_val v{op.value.size(), const_cast<char*>(op.value.data())};
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc != 0) return MdbError(rc, "put", info_);
        return Status::OK();
      }
      case WriteBatch::OpType::kDelete:
        if (op.key.size() > info_.max_key) return Status::OK();  // cannot exist
        EncodeKey(op.key, buf, &k);
        rc = mdb_del(txn, dbi, &k, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) return MdbError(rc, "delete", info_);
        return Status::OK();
      case WriteBatch::OpType::kDeleteRange:
        return DeleteRange(txn, dbi, op.key, op.value);
      case WriteBatch::OpType::kAdd: {
        KVFS_RETURN_IF_ERROR(CheckKey(op.key));
        EncodeKey(op.key, buf, &k);
        MDB_val old;
        rc = mdb_get(txn, dbi, &k, &old);
        if (rc != 0 && rc != MDB_NOTFOUND) return MdbError(rc, "read counter", info_);
        const uint64_t base = rc == 0 ? static_cast<uint64_t>(DecodeCounter(ToView(old))) : 0;
        // Wraps around like the other stores instead of overflowing.
        const std::string sum = EncodeCounter(
            static_cast<int64_t>(base + static_cast<uint64_t>(DecodeCounter(op.value))));
        MDB_val v{sum.size(), const_cast<char*>(sum.data())};
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc != 0) return MdbError(rc, "write counter", info_);
        return Status::OK();
      }
    }
    return Status::InvalidArgument("lmdb store: bad operation");
  }

  // Deletes every key in [begin, end) with a cursor, one key at a time.
  Status DeleteRange(MDB_txn* txn, MDB_dbi dbi, std::string_view begin, std::string_view end) {
    if (begin >= end) return Status::OK();  // empty (begin > end was refused)
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, dbi, &cursor);
    if (rc != 0) return MdbError(rc, "open cursor", info_);
    MDB_val k, v;
    rc = SeekAtOrAfter(cursor, begin, info_.max_key, &k, &v);
    while (rc == 0 && UserKey(k) < end) {
      rc = mdb_cursor_del(cursor, 0);
      // After a delete the cursor stands on the following key, which
      // MDB_NEXT returns rather than skipping.
      if (rc == 0) rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return MdbError(rc, "delete range", info_);
    return Status::OK();
  }

  // Declared first, so destroyed last: the pooled read transactions end
  // before the environment closes.
  const EnvHandle env_;
  const std::array<MDB_dbi, kNumColumns> dbis_;
  const StoreInfo info_;
  ReadTxnPool read_pool_;
  WriteQueue queue_;
};

// Bulk loader staging its records in an unlinked temporary file; Commit
// loads them in one write transaction (see lmdb_store.h).
class LmdbLoader final : public BulkLoader {
 public:
  // Takes ownership of fd, an empty unlinked file opened for reading and
  // writing.
  LmdbLoader(LmdbStore* store, int fd) : store_(store), fd_(fd) {
    buf_.reserve(kStagingBufferBytes + kStagedHeaderBytes);
  }
  ~LmdbLoader() override { close(fd_); }

  LmdbLoader(const LmdbLoader&) = delete;
  LmdbLoader& operator=(const LmdbLoader&) = delete;

  Status Add(Column c, std::string_view key, std::string_view value) override {
    const int i = static_cast<int>(c);
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    KVFS_RETURN_IF_ERROR(order_.Check(c, key));
    if (key.size() > store_->info().max_key) {
      return Status::InvalidArgument("bulk load: key of " + std::to_string(key.size()) +
                                     " bytes is longer than LMDB's limit of " +
                                     std::to_string(store_->info().max_key));
    }
    if (value.size() > UINT32_MAX) return Status::InvalidArgument("bulk load: value too big");
    if (!write_error_.ok()) return write_error_;
    order_.Added(c, key);
    char header[kStagedHeaderBytes];
    EncodeStagedHeader(StagedHeader{static_cast<uint8_t>(i), static_cast<uint32_t>(key.size()),
                                    static_cast<uint32_t>(value.size())},
                       header);
    buf_.append(header, sizeof(header));
    buf_.append(key);
    buf_.append(value);
    ++records_;
    bytes_ += key.size() + value.size();
    if (buf_.size() >= kStagingBufferBytes) return Flush();
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::InvalidArgument("bulk load: already committed");
    committed_ = true;
    KVFS_RETURN_IF_ERROR(Flush());
    if (records_ == 0) return Status::OK();
    return store_->LoadStaged(fd_, records_);
  }

  uint64_t BytesAdded() const override { return bytes_; }

 private:
  // Writes the buffer to the staging file. A failure sticks: the file is
  // incomplete from then on.
  Status Flush() {
    if (!write_error_.ok()) return write_error_;
    const int err = WriteAll(fd_, buf_.data(), buf_.size());
    buf_.clear();
    if (err != 0) write_error_ = Status::FromErrno(err, "bulk load: write staging file");
    return write_error_;
  }

  LmdbStore* const store_;
  const int fd_;
  std::string buf_;  // records not yet written to fd_
  Status write_error_;
  bool committed_ = false;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  BulkLoadKeyOrder order_;
};

Status LmdbStore::NewBulkLoader(const std::string& staging_dir, std::unique_ptr<BulkLoader>* out) {
  if (staging_dir.empty()) return Status::InvalidArgument("bulk load: empty staging directory");
  std::error_code ec;
  std::filesystem::create_directories(staging_dir, ec);
  if (ec) {
    return Status::FromErrno(ec.value(), "bulk load: create staging directory " + staging_dir);
  }
  // An anonymous file where the file system supports it, else a named one
  // unlinked at once: either way nothing is left behind, even by a crash.
  int fd = open(staging_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string name = staging_dir + "/lmdb-bulk-XXXXXX";
    fd = mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) {
      return Status::FromErrno(errno, "bulk load: create a staging file in " + staging_dir);
    }
    unlink(name.c_str());
  }
  *out = std::make_unique<LmdbLoader>(this, fd);
  return Status::OK();
}

Status LmdbStore::LoadStaged(int fd, uint64_t records) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_.get(), nullptr, 0, &txn);
  if (rc != 0) return MdbError(rc, "bulk load: begin write transaction", info_);
  std::array<MDB_cursor*, kNumColumns> cursors{};
  StagingReader reader(fd);
  Status s;
  for (uint64_t n = 0; n < records && s.ok(); ++n) {
    const char* p = nullptr;
    s = reader.Take(kStagedHeaderBytes, &p);
    if (!s.ok()) break;
    const StagedHeader h = DecodeStagedHeader(p);
    if (h.column >= kNumColumns || h.key_size > info_.max_key) {
      s = Status::IOError("bulk load: staging file corrupt");
      break;
    }
    s = reader.Take(static_cast<size_t>(h.key_size) + h.value_size, &p);
    if (!s.ok()) break;
    MDB_cursor*& cursor = cursors[h.column];
    if (cursor == nullptr) {
      rc = mdb_cursor_open(txn, dbis_[h.column], &cursor);
      if (rc != 0) {
        s = MdbError(rc, "bulk load: open cursor", info_);
        break;
      }
    }
    char buf[kKeyBufSize];
    MDB_val k;
    EncodeKey(std::string_view(p, h.key_size), buf, &k);
    MDB_val v{h.value_size, const_cast<char*>(p + h.key_size)};
    // Keys beyond the column's last key (the usual case: a fresh inode
    // range) are appended; MDB_KEYEXIST says this one is not, so it is put
    // (overwriting) the normal way. Either way the key is unchanged.
    rc = mdb_cursor_put(cursor, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
      EncodeKey(std::string_view(p, h.key_size), buf, &k);
      v = MDB_val{h.value_size, const_cast<char*>(p + h.key_size)};
      rc = mdb_cursor_put(cursor, &k, &v, 0);
    }
    if (rc != 0) s = MdbError(rc, "bulk load: put", info_);
  }
  if (s.ok()) {
    rc = mdb_txn_commit(txn);
    if (rc != 0) s = MdbError(rc, "bulk load: commit", info_);
  } else {
    mdb_txn_abort(txn);  // closes the cursors of a write transaction
  }
#ifdef __GLIBC__
  // The transaction's dirty pages (about the size of the load: see
  // lmdb_store.h) went back to malloc, which would otherwise keep them.
  malloc_trim(0);
#endif
  return s;
}

// fsync()s directory `dir`, so that entries created in it survive a crash.
// Best effort (some file systems refuse to sync directories).
void SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

}  // namespace

Status OpenLmdbStore(const KVStoreSpec& spec, std::unique_ptr<KVStore>* out) {
  if (spec.path.empty()) return Status::InvalidArgument("lmdb store: empty path");
  StoreInfo info;
  info.path = spec.path;
  info.map_size = kDefaultMapSize;
  int64_t max_readers = kDefaultMaxReaders;
  bool read_ahead = true;
  PluginOptionReader options("backend lmdb", spec.options);
  options.Size("map_size", &info.map_size);
  options.Int("max_readers", 1, kMaxMaxReaders, &max_readers);
  options.Bool("read_ahead", &read_ahead);
  KVFS_RETURN_IF_ERROR(options.Finish());
  if (info.map_size < kMinMapSize) {
    return Status::InvalidArgument("backend lmdb: map_size=" + std::to_string(info.map_size) +
                                   " is below the minimum of 1M");
  }
  // LMDB wants a multiple of the page size.
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (info.map_size % page != 0) {
    if (info.map_size > UINT64_MAX - page) {
      return Status::InvalidArgument("backend lmdb: map_size too big");
    }
    info.map_size += page - info.map_size % page;
  }

  const std::string context = "open lmdb store at " + spec.path;
  const std::string data_file = spec.path + "/data.mdb";
  struct stat st;
  const bool exists = stat(data_file.c_str(), &st) == 0;
  if (!exists && errno != ENOENT && errno != ENOTDIR) {
    return Status::IOError(context + ": " + data_file + ": " + std::strerror(errno));
  }
  if (!exists && !spec.create_if_missing) {
    return Status::NotFound(context + ": no database there");
  }
  if (!exists) {
    std::error_code ec;
    std::filesystem::create_directories(spec.path, ec);
    if (ec) return Status::IOError(context + ": create directory: " + ec.message());
  }

  // Exclusive use: a second open, in this process or another, fails here,
  // before LMDB touches lock.mdb (whose fcntl locks a second open in this
  // process would break).
  const std::string lock_file = spec.path + "/LOCK";
  const int lock_fd = open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    return Status::IOError(context + ": open lock file " + lock_file + ": " + std::strerror(errno));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(lock_fd);
    return Status::IOError(
        context + ": lock " + lock_file + ": " +
        (err == EWOULDBLOCK ? "held by another open of the store" : std::strerror(err)));
  }

  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) {
    close(lock_fd);
    return Status::IOError(context + ": mdb_env_create: " + mdb_strerror(rc));
  }
  // Opening: every failure is about the path (none is NotFound).
  auto fail = [&](int code, std::string_view what) {
    mdb_env_close(env);
    close(lock_fd);
    return Status::IOError(context + ": " + std::string(what) + ": " + mdb_strerror(code));
  };
  if ((rc = mdb_env_set_mapsize(env, info.map_size)) != 0) return fail(rc, "set map_size");
  if ((rc = mdb_env_set_maxreaders(env, static_cast<unsigned>(max_readers))) != 0) {
    return fail(rc, "set max_readers");
  }
  if ((rc = mdb_env_set_maxdbs(env, kNumColumns)) != 0) return fail(rc, "set maxdbs");
  const unsigned flags = MDB_NOTLS | (read_ahead ? 0 : MDB_NORDAHEAD);
  if ((rc = mdb_env_open(env, spec.path.c_str(), flags, 0644)) != 0)
    return fail(rc, "mdb_env_open");
  // Slots of readers in processes that died (none while we hold LOCK).
  int dead = 0;
  (void)mdb_reader_check(env, &dead);

  std::array<MDB_dbi, kNumColumns> dbis{};
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn)) != 0) return fail(rc, "begin transaction");
  for (int i = 0; i < kNumColumns; ++i) {
    rc = mdb_dbi_open(txn, ColumnName(static_cast<Column>(i)), MDB_CREATE, &dbis[i]);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return fail(rc, std::string("open database ") + ColumnName(static_cast<Column>(i)));
    }
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "commit");
  if (!exists) {
    // Make the new files' directory entries durable, and the directory's.
    SyncDir(spec.path);
    SyncDir(std::filesystem::path(spec.path).parent_path().string());
  }
  const int max_key = mdb_env_get_maxkeysize(env);
  info.max_key = static_cast<size_t>(std::clamp(max_key, 1, static_cast<int>(kKeyBufSize))) - 1;
  *out = std::make_unique<LmdbStore>(env, dbis, lock_fd, std::move(info));
  return Status::OK();
}

}  // namespace kvfs

KVFS_DEFINE_KV_PLUGIN("lmdb", kvfs::OpenLmdbStore)
