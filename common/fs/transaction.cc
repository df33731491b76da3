#include "common/fs/transaction.h"

#include "common/fs/block_scan.h"

namespace kvfs {

Status Transaction::GetBucket(Ino dir, uint64_t bucket, schema::Bucket** out) {
  auto key = std::make_pair(dir, bucket);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    BucketState st;
    std::string value;
    Status s = store_->Get(Column::kEntries, schema::EntryKey(dir, bucket), &value);
    if (s.ok()) {
      KVFS_RETURN_IF_ERROR(schema::DecodeBucket(value, &st.bucket));
    } else if (!s.IsNotFound()) {
      return s;
    }
    it = buckets_.emplace(key, std::move(st)).first;
  }
  *out = &it->second.bucket;
  return Status::OK();
}

void Transaction::MarkBucketDirty(Ino dir, uint64_t bucket) {
  buckets_[std::make_pair(dir, bucket)].dirty = true;
}

Status Transaction::GetLocation(Ino ino, schema::InodeLocation** out) {
  auto it = locations_.find(ino);
  if (it == locations_.end()) {
    LocationState st;
    LocationCache::Location cached;
    if (locations_cache_->Find(ino, &cached) && !cached.detached) {
      st.loc.parent = cached.parent;
      st.loc.bucket = cached.bucket;
    } else {
      // A detached record lives in the index itself: read it.
      const uint64_t ticket = locations_cache_->BeginFill(ino);
      std::string value;
      Status s = store_->Get(Column::kInodes, schema::InodeKey(ino), &value);
      if (s.IsNotFound()) {
        st.exists = false;
      } else {
        KVFS_RETURN_IF_ERROR(s);
        KVFS_RETURN_IF_ERROR(schema::DecodeLocation(value, &st.loc));
        locations_cache_->Fill(ino, ticket, {st.loc.detached, st.loc.parent, st.loc.bucket});
      }
    }
    it = locations_.emplace(ino, std::move(st)).first;
  }
  if (!it->second.exists) {
    return Status::FromErrno(ESTALE, "inode " + std::to_string(ino) + " does not exist");
  }
  *out = &it->second.loc;
  return Status::OK();
}

void Transaction::SetEmbeddedLocation(Ino ino, Ino parent, uint64_t bucket) {
  LocationState& st = locations_[ino];
  st.loc = schema::InodeLocation();
  st.loc.parent = parent;
  st.loc.bucket = bucket;
  st.exists = true;
  st.dirty = true;
}

void Transaction::SetDetached(Ino ino, const schema::InodeRecord& record) {
  LocationState& st = locations_[ino];
  st.loc = schema::InodeLocation();
  st.loc.detached = true;
  st.loc.record = record;
  st.exists = true;
  st.dirty = true;
}

void Transaction::EraseLocation(Ino ino) {
  LocationState& st = locations_[ino];
  st.exists = false;
  st.dirty = true;
}

Status Transaction::GetRecordForUpdate(Ino ino, schema::InodeRecord** out) {
  schema::InodeLocation* loc;
  KVFS_RETURN_IF_ERROR(GetLocation(ino, &loc));
  if (loc->detached) {
    locations_[ino].dirty = true;
    *out = &loc->record;
    return Status::OK();
  }
  schema::Bucket* b;
  KVFS_RETURN_IF_ERROR(GetBucket(loc->parent, loc->bucket, &b));
  schema::Entry* e = b->FindIno(ino);
  if (e == nullptr || !e->embedded) {
    return Status::Corruption("inode " + std::to_string(ino) +
                              " is not in the entry its index names");
  }
  MarkBucketDirty(loc->parent, loc->bucket);
  *out = &e->record;
  return Status::OK();
}

Status Transaction::GetBlock(Ino ino, uint64_t block, std::string* out) {
  auto key = std::make_pair(ino, block);
  if (auto it = block_puts_.find(key); it != block_puts_.end()) {
    *out = it->second;
    return Status::OK();
  }
  if (block_deletes_.count(key) || RangeDeleted(ino, block)) {
    out->clear();
    return Status::OK();
  }
  Status s = store_->Get(Column::kBlocks, schema::BlockKey(ino, block), out);
  if (s.IsNotFound()) {
    out->clear();
    return Status::OK();
  }
  return s;
}

void Transaction::PutBlock(Ino ino, uint64_t block, std::string data) {
  auto key = std::make_pair(ino, block);
  block_deletes_.erase(key);
  block_puts_[key] = std::move(data);
}

void Transaction::DeleteBlock(Ino ino, uint64_t block) {
  auto key = std::make_pair(ino, block);
  block_puts_.erase(key);
  block_deletes_.insert(key);
}

bool Transaction::RangeDeleted(Ino ino, uint64_t block) const {
  for (const BlockRange& r : range_deletes_) {
    if (r.ino == ino && block >= r.first && block < r.end) return true;
  }
  return false;
}

void Transaction::DeleteBlocks(Ino ino, uint64_t first, uint64_t end) {
  if (end <= first) return;
  if (end - first <= kMaxPointDeletes) {
    for (uint64_t b = first; b < end; ++b) DeleteBlock(ino, b);
    return;
  }
  // Pending changes inside the range are superseded by the range delete.
  const auto lo = std::make_pair(ino, first), hi = std::make_pair(ino, end);
  block_puts_.erase(block_puts_.lower_bound(lo), block_puts_.lower_bound(hi));
  block_deletes_.erase(block_deletes_.lower_bound(lo), block_deletes_.lower_bound(hi));
  range_deletes_.push_back(BlockRange{ino, first, end});
}

Status Transaction::StoredBytes(Ino ino, uint64_t first, uint64_t end, uint64_t* bytes) {
  *bytes = 0;
  if (end <= first) return Status::OK();
  const auto lo = std::make_pair(ino, first), hi = std::make_pair(ino, end);
  // What the store holds, less what this transaction replaces or deletes.
  KVFS_RETURN_IF_ERROR(
      ScanBlocks(store_, ino, first, end, [&](uint64_t block, std::string_view data) {
        const auto key = std::make_pair(ino, block);
        if (!block_puts_.count(key) && !block_deletes_.count(key) && !RangeDeleted(ino, block)) {
          *bytes += data.size();
        }
        return true;
      }));
  for (auto p = block_puts_.lower_bound(lo); p != block_puts_.end() && p->first < hi; ++p) {
    *bytes += p->second.size();
  }
  return Status::OK();
}

void Transaction::AddUsage(uint64_t range, int64_t bytes, int64_t inodes) {
  if (bytes != 0) {
    batch_.Add(Column::kMeta, schema::UsageBytesKey(range), bytes);
    batch_.Add(Column::kMeta, schema::TotalBytesKey(), bytes);
  }
  if (inodes != 0) {
    batch_.Add(Column::kMeta, schema::UsageInodesKey(range), inodes);
    batch_.Add(Column::kMeta, schema::TotalInodesKey(), inodes);
  }
}

Status Transaction::Commit() {
  for (auto& [key, st] : buckets_) {
    if (!st.dirty) continue;
    std::string k = schema::EntryKey(key.first, key.second);
    if (st.bucket.entries.empty()) {
      batch_.Delete(Column::kEntries, k);
    } else {
      batch_.Put(Column::kEntries, k, schema::EncodeBucket(st.bucket));
    }
  }
  for (auto& [ino, st] : locations_) {
    if (!st.dirty) continue;
    if (st.exists) {
      batch_.Put(Column::kInodes, schema::InodeKey(ino), schema::EncodeLocation(st.loc));
    } else {
      batch_.Delete(Column::kInodes, schema::InodeKey(ino));
    }
  }
  // Range deletes first: every point delete and put is newer.
  for (const BlockRange& r : range_deletes_) {
    batch_.DeleteRange(Column::kBlocks, schema::BlockKey(r.ino, r.first),
                       schema::BlockKey(r.ino, r.end));
  }
  for (const auto& key : block_deletes_) {
    batch_.Delete(Column::kBlocks, schema::BlockKey(key.first, key.second));
  }
  for (const auto& [key, data] : block_puts_) {
    batch_.Put(Column::kBlocks, schema::BlockKey(key.first, key.second), data);
  }
  if (batch_.empty()) return Status::OK();
  const Status s = store_->Write(WriteOptions(), batch_);
  // The cache follows what was written; after a failed write nobody knows
  // what the store holds, so the changed inodes are forgotten.
  for (const auto& [ino, st] : locations_) {
    if (!st.dirty) continue;
    if (s.ok() && st.exists) {
      locations_cache_->Set(ino, {st.loc.detached, st.loc.parent, st.loc.bucket});
    } else {
      locations_cache_->Erase(ino);
    }
  }
  return s;
}

}  // namespace kvfs
