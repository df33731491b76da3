#include "common/fs/fsck.h"

#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/fs/coding.h"
#include "common/fs/schema.h"

namespace kvfs {

namespace {

using schema::InodeRecord;

struct InodeInfo {
  bool detached = false;
  Ino parent = 0;  // embedded: where the index says the record is
  uint64_t bucket = 0;
  InodeRecord record;  // detached: from the index; embedded: from its entry
  bool have_record = false;
  uint32_t references = 0;  // entries naming this inode
  uint32_t embedded_refs = 0;
  uint64_t entries = 0;      // directories: entries inside
  uint32_t subdirs = 0;      // directories: subdirectories inside
  Ino entry_parent = 0;      // directories: the parent whose entry names it
  uint64_t block_bytes = 0;  // files with contents in blocks: what they hold
};

class Checker {
 public:
  Checker(KVStore* store, const NameHasher& hasher, FsckReport* report)
      : store_(store), hasher_(hasher), report_(report) {}

  Status Run() {
    snapshot_ = store_->GetSnapshot();
    KVFS_RETURN_IF_ERROR(ReadMeta());
    if (!report_->ok()) return Status::OK();  // no superblock: nothing else makes sense
    KVFS_RETURN_IF_ERROR(ReadIndex());
    KVFS_RETURN_IF_ERROR(ReadEntries());
    CheckInodes();
    CheckReachability();
    KVFS_RETURN_IF_ERROR(ReadBlocks());
    CheckStoredBytes();
    CheckUsage();
    return Status::OK();
  }

 private:
  void Problem(std::string s) { report_->problems.push_back(std::move(s)); }
  // True if `ino` lies in a range that is being bulk loaded.
  bool Loading(Ino ino) const {
    auto r = ranges_.find(schema::RangeOf(ino));
    return r != ranges_.end() && r->second.loading;
  }
  static std::string InoStr(Ino ino) { return "inode " + std::to_string(ino); }

  std::unique_ptr<Iterator> Scan(Column c) {
    IteratorOptions io;
    io.snapshot = snapshot_.get();
    auto it = store_->NewIterator(c, io);
    it->Seek("");
    return it;
  }

  Status ReadMeta() {
    std::string v;
    ReadOptions ro;
    ro.snapshot = snapshot_.get();
    Status s = store_->Get(ro, Column::kMeta, schema::kSuperKey, &v);
    if (s.IsNotFound()) {
      Problem("no superblock: not a KVFS store");
      return Status::OK();
    }
    KVFS_RETURN_IF_ERROR(s);
    s = schema::DecodeSuperblock(v, &super_);
    if (!s.ok()) {
      Problem("superblock: " + s.message());
      return Status::OK();
    }
    if (super_.hash_name != hasher_.name) {
      Problem("store uses name hash '" + super_.hash_name + "', fsck was given '" + hasher_.name +
              "'");
      return Status::OK();
    }
    for (auto it = Scan(Column::kMeta); it->Valid(); it->Next()) {
      std::string_view key = it->key();
      uint64_t range;
      Ino ino;
      if (schema::ParseRangeKey(key, &range)) {
        schema::RangeRecord r;
        if (!schema::DecodeRangeRecord(it->value(), &r).ok()) {
          Problem("range " + std::to_string(range) + ": undecodable record");
        } else {
          ranges_[range] = r;
          if (r.loading) ++report_->loading_ranges;
        }
      } else if (schema::ParseOrphanKey(key, &ino)) {
        orphans_.insert(ino);
      } else if (key.starts_with(schema::kUsagePrefix)) {
        counters_[std::string(key)] = DecodeCounter(it->value());
      } else if (key.starts_with(schema::kCachePrefix)) {
        // The cache manager's records: not the file system's to check.
      } else if (key != schema::kSuperKey) {
        Problem("unknown meta key of " + std::to_string(key.size()) + " bytes");
      }
    }
    return Status::OK();
  }

  Status ReadIndex() {
    auto it = Scan(Column::kInodes);
    for (; it->Valid(); it->Next()) {
      Ino ino;
      if (!schema::ParseInodeKey(it->key(), &ino)) {
        Problem("inode index: malformed key");
        continue;
      }
      if (Loading(ino)) continue;
      schema::InodeLocation loc;
      Status s = schema::DecodeLocation(it->value(), &loc);
      if (!s.ok()) {
        Problem(InoStr(ino) + ": " + s.message());
        continue;
      }
      InodeInfo& info = inodes_[ino];
      info.detached = loc.detached;
      info.parent = loc.parent;
      info.bucket = loc.bucket;
      if (loc.detached) {
        info.record = std::move(loc.record);
        info.have_record = true;
      }
    }
    return it->status();
  }

  Status ReadEntries() {
    auto it = Scan(Column::kEntries);
    for (; it->Valid(); it->Next()) {
      Ino dir;
      uint64_t bucket;
      if (!schema::ParseEntryKey(it->key(), &dir, &bucket)) {
        Problem("entries: malformed key");
        continue;
      }
      if (Loading(dir)) continue;
      schema::Bucket b;
      Status s = schema::DecodeBucket(it->value(), &b);
      std::string where = "directory " + std::to_string(dir) + " bucket " + std::to_string(bucket);
      if (!s.ok()) {
        Problem(where + ": " + s.message());
        continue;
      }
      auto d = inodes_.find(dir);
      if (d == inodes_.end()) {
        Problem(where + ": entries of a directory that does not exist");
        continue;
      }
      std::unordered_set<uint8_t> slots;
      for (auto& e : b.entries) {
        ++report_->entries;
        std::string ew = where + " entry '" + e.name + "'";
        if (!slots.insert(e.slot).second) Problem(ew + ": duplicate slot");
        if (e.name.empty() || e.name.size() > kMaxNameLength || e.name == "." || e.name == ".." ||
            e.name.find('/') != std::string::npos || e.name.find('\0') != std::string::npos) {
          Problem(ew + ": invalid name");
        }
        if (schema::BucketOf(hasher_.hash(e.name)) != bucket) Problem(ew + ": in the wrong bucket");
        if (Loading(e.ino)) {
          Problem(ew + ": names " + InoStr(e.ino) + " of a range that is still loading");
          continue;
        }
        auto t = inodes_.find(e.ino);
        if (t == inodes_.end()) {
          Problem(ew + ": names " + InoStr(e.ino) + " which is not in the inode index");
          continue;
        }
        InodeInfo& target = t->second;
        ++target.references;
        ++d->second.entries;
        if (e.type == FileType::kDirectory) {
          ++d->second.subdirs;
          target.entry_parent = dir;
        }
        if (e.embedded) {
          ++target.embedded_refs;
          if (target.detached || target.parent != dir || target.bucket != bucket) {
            Problem(ew + ": embedded record of " + InoStr(e.ino) +
                    " but the index points elsewhere");
          }
          target.record = std::move(e.record);
          target.have_record = true;
        } else if (!target.detached) {
          Problem(ew + ": links to " + InoStr(e.ino) + " whose record is not detached");
        }
        if (target.have_record && target.record.type != e.type) {
          Problem(ew + ": type differs from its record");
        }
        CheckRange(dir, e, ew);
      }
    }
    return it->status();
  }

  void CheckRange(Ino dir, const schema::Entry& e, const std::string& ew) {
    uint64_t range = schema::RangeOf(e.ino);
    bool ok;
    if (dir == kRootIno) {
      ok = e.type == FileType::kDirectory ? schema::IsRangeOwner(e.ino) : range == 0;
    } else {
      ok = range == schema::RangeOf(dir) && !schema::IsRangeOwner(e.ino);
    }
    if (!ok) Problem(ew + ": " + InoStr(e.ino) + " is outside the inode range it belongs to");
  }

  void CheckInodes() {
    for (auto& [ino, info] : inodes_) {
      std::string w = InoStr(ino);
      uint64_t range = schema::RangeOf(ino);
      auto r = ranges_.find(range);
      if (r == ranges_.end()) {
        Problem(w + ": its range " + std::to_string(range) + " has no record");
      } else if ((ino & schema::kLocalMask) >= r->second.high_water) {
        Problem(w + ": above its range's high-water mark");
      } else if (range != 0 && r->second.owner == 0) {
        Problem(w + ": in range " + std::to_string(range) + ", which was dropped");
      }
      if (!info.have_record) {
        Problem(w + ": index points at an entry that does not hold it");
        continue;
      }
      const InodeRecord& rec = info.record;
      usage_bytes_[range] += static_cast<int64_t>(schema::UsageBytes(rec));
      usage_inodes_[range] += 1;
      if (rec.type == FileType::kDirectory) {
        ++report_->directories;
        if (info.detached && ino != kRootIno) Problem(w + ": detached directory");
        if (info.embedded_refs != (ino == kRootIno ? 0u : 1u)) {
          Problem(w + ": directory named by " + std::to_string(info.references) + " entries");
        }
        if (rec.nlink != 2 + info.subdirs) {
          Problem(w + ": directory nlink " + std::to_string(rec.nlink) + ", expected " +
                  std::to_string(2 + info.subdirs));
        }
        if (rec.size != info.entries) {
          Problem(w + ": directory size " + std::to_string(rec.size) + ", has " +
                  std::to_string(info.entries) + " entries");
        }
      } else {
        ++report_->files;
        report_->bytes += rec.size;
        if (rec.nlink != info.references) {
          Problem(w + ": nlink " + std::to_string(rec.nlink) + " but named by " +
                  std::to_string(info.references) + " entries");
        }
        if (rec.nlink == 0 && !orphans_.count(ino)) {
          Problem(w + ": unlinked and not registered as an open orphan");
        }
        if (rec.type == FileType::kRegular) {
          bool should_inline = rec.size <= super_.inline_threshold;
          if (rec.inline_data != should_inline) {
            Problem(w + ": contents " + (rec.inline_data ? "inline" : "in blocks") + " at size " +
                    std::to_string(rec.size));
          }
          if (rec.inline_data && rec.data.size() != rec.size) {
            Problem(w + ": inline contents of " + std::to_string(rec.data.size()) +
                    " bytes, size " + std::to_string(rec.size));
          }
        } else if (rec.type == FileType::kSymlink && rec.data.size() != rec.size) {
          Problem(w + ": symlink target length differs from its size");
        }
      }
    }
    for (Ino ino : orphans_) {
      auto it = inodes_.find(ino);
      if (it == inodes_.end() || !it->second.detached || it->second.record.nlink != 0) {
        Problem(InoStr(ino) + ": registered as an orphan but is not an unlinked file");
      }
    }
    if (!inodes_.count(kRootIno)) Problem("no root directory");
  }

  void CheckReachability() {
    // Every directory must reach the root through its parents' entries.
    for (auto& [ino, info] : inodes_) {
      if (!info.have_record || info.record.type != FileType::kDirectory || ino == kRootIno)
        continue;
      Ino cur = ino;
      size_t steps = 0;
      while (cur != kRootIno && steps++ <= inodes_.size()) {
        auto it = inodes_.find(cur);
        if (it == inodes_.end() || it->second.entry_parent == 0) break;
        cur = it->second.entry_parent;
      }
      if (cur != kRootIno) Problem(InoStr(ino) + ": directory not reachable from the root");
    }
  }

  Status ReadBlocks() {
    auto it = Scan(Column::kBlocks);
    for (; it->Valid(); it->Next()) {
      Ino ino;
      uint64_t block;
      if (!schema::ParseBlockKey(it->key(), &ino, &block)) {
        Problem("blocks: malformed key");
        continue;
      }
      if (Loading(ino)) continue;
      ++report_->blocks;
      std::string w = InoStr(ino) + " block " + std::to_string(block);
      auto t = inodes_.find(ino);
      if (t == inodes_.end() || !t->second.have_record) {
        Problem(w + ": block of an inode that does not exist");
        continue;
      }
      const InodeRecord& rec = t->second.record;
      if (rec.type != FileType::kRegular || rec.inline_data) {
        Problem(w + ": block of an inode whose contents are not in blocks");
        continue;
      }
      uint64_t start = block * super_.block_size;
      size_t len = it->value().size();
      if (len > super_.block_size || start >= rec.size || start + len > rec.size) {
        Problem(w + ": extends past the end of the file");
      }
      t->second.block_bytes += len;
    }
    return it->status();
  }

  // The stored byte count of each file with blocks is what its blocks hold
  // (usage counts it, so a wrong count means wrong usage).
  void CheckStoredBytes() {
    for (auto& [ino, info] : inodes_) {
      const InodeRecord& rec = info.record;
      if (!info.have_record || rec.type != FileType::kRegular || rec.inline_data) continue;
      if (info.block_bytes != rec.stored) {
        Problem(InoStr(ino) + ": records " + std::to_string(rec.stored) +
                " stored bytes, its blocks hold " + std::to_string(info.block_bytes));
      }
    }
  }

  void CheckUsage() {
    int64_t total_bytes = 0, total_inodes = 0;
    auto check = [&](const std::string& key, int64_t expect, const std::string& what) {
      auto it = counters_.find(key);
      int64_t have = it == counters_.end() ? 0 : it->second;
      if (have != expect) {
        Problem(what + ": counter says " + std::to_string(have) + ", recomputed " +
                std::to_string(expect));
      }
    };
    std::map<uint64_t, bool> ranges;
    for (auto& [r, v] : usage_bytes_) ranges[r] = true;
    for (auto& [r, v] : usage_inodes_) ranges[r] = true;
    for (auto& [key, v] : counters_) {
      std::string_view k = key;
      k.remove_prefix(schema::kUsagePrefix.size());
      if (k.size() == 10) {
        ranges[DecodeBigEndian64(k.data())] = true;
      }
    }
    for (auto& [r, unused] : ranges) {
      check(schema::UsageBytesKey(r), usage_bytes_[r], "range " + std::to_string(r) + " bytes");
      check(schema::UsageInodesKey(r), usage_inodes_[r], "range " + std::to_string(r) + " inodes");
      total_bytes += usage_bytes_[r];
      total_inodes += usage_inodes_[r];
    }
    check(schema::TotalBytesKey(), total_bytes, "total bytes");
    check(schema::TotalInodesKey(), total_inodes, "total inodes");
  }

  KVStore* store_;
  const NameHasher& hasher_;
  FsckReport* report_;
  std::unique_ptr<Snapshot> snapshot_;
  schema::Superblock super_;
  std::map<uint64_t, schema::RangeRecord> ranges_;
  std::unordered_set<Ino> orphans_;
  std::map<std::string, int64_t> counters_;
  std::unordered_map<Ino, InodeInfo> inodes_;
  std::map<uint64_t, int64_t> usage_bytes_, usage_inodes_;
};

}  // namespace

Status Fsck(KVStore* store, const NameHasher& hasher, FsckReport* report) {
  *report = FsckReport();
  return Checker(store, hasher, report).Run();
}

}  // namespace kvfs
