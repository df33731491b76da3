#include "common/fs/schema.h"

#include <algorithm>

#include "common/fs/coding.h"

namespace kvfs::schema {

namespace {

std::string TwoPartKey(uint64_t a, uint64_t b) {
  std::string k;
  k.reserve(16);
  PutBigEndian64(&k, a);
  PutBigEndian64(&k, b);
  return k;
}

bool ParseTwoPartKey(std::string_view key, uint64_t* a, uint64_t* b) {
  if (key.size() != 16) return false;
  *a = DecodeBigEndian64(key.data());
  *b = DecodeBigEndian64(key.data() + 8);
  return true;
}

std::string PrefixedKey(std::string_view prefix, uint64_t n) {
  std::string k(prefix);
  PutBigEndian64(&k, n);
  return k;
}

bool ParsePrefixedKey(std::string_view key, std::string_view prefix, uint64_t* n) {
  if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return false;
  *n = DecodeBigEndian64(key.data() + prefix.size());
  return true;
}

void PutTime(std::string* dst, const Timespec& t) {
  PutFixed64(dst, static_cast<uint64_t>(t.sec));
  PutFixed32(dst, t.nsec);
}

bool GetTime(std::string_view* in, Timespec* t) {
  uint64_t sec;
  if (!GetFixed64(in, &sec) || !GetFixed32(in, &t->nsec)) return false;
  t->sec = static_cast<int64_t>(sec);
  return true;
}

bool ValidType(uint8_t t) { return t >= 1 && t <= 7; }

// Record flags.
constexpr uint8_t kFlagInline = 1;
// Inode records of regular files whose contents are in blocks have version 2,
// which adds the stored byte count after the change counter. Records of
// version 1 in such files (written before version 2 existed) count their
// size as stored.
constexpr uint8_t kRecordVersionWithStored = 2;

bool HasStoredField(const InodeRecord& r) { return r.type == FileType::kRegular && !r.inline_data; }

// Range records: version 2 adds a flags byte.
constexpr uint8_t kRangeRecordVersionWithFlags = 2;
constexpr uint8_t kRangeFlagLoading = 1;
constexpr uint8_t kRangeFlagStub = 2;
constexpr uint8_t kRangeFlagFilling = 4;
constexpr uint8_t kRangeFlagsKnown = kRangeFlagLoading | kRangeFlagStub | kRangeFlagFilling;

}  // namespace

std::string EntryKey(Ino parent, uint64_t bucket) { return TwoPartKey(parent, bucket); }
std::string DirBegin(Ino dir) { return TwoPartKey(dir, 0); }
std::string DirEnd(Ino dir) { return TwoPartKey(dir + 1, 0); }
bool ParseEntryKey(std::string_view key, Ino* parent, uint64_t* bucket) {
  return ParseTwoPartKey(key, parent, bucket);
}

void EncodeInodeRecord(const InodeRecord& r, std::string* dst) {
  PutFixed8(dst, HasStoredField(r) ? kRecordVersionWithStored : kFormatVersion);
  PutFixed8(dst, static_cast<uint8_t>(r.type));
  PutFixed8(dst, r.inline_data ? kFlagInline : 0);
  PutFixed32(dst, r.mode);
  PutFixed32(dst, r.uid);
  PutFixed32(dst, r.gid);
  PutFixed32(dst, r.nlink);
  PutFixed64(dst, r.size);
  PutFixed64(dst, r.rdev);
  PutTime(dst, r.atime);
  PutTime(dst, r.mtime);
  PutTime(dst, r.ctime);
  PutFixed64(dst, r.change);
  if (HasStoredField(r)) PutFixed64(dst, r.stored);
  PutLengthPrefixed32(dst, r.data);
}

bool DecodeInodeRecord(std::string_view* in, InodeRecord* r, bool skip_data) {
  uint8_t version, type, flags;
  if (!GetFixed8(in, &version) ||
      (version != kFormatVersion && version != kRecordVersionWithStored)) {
    return false;
  }
  if (!GetFixed8(in, &type) || !ValidType(type)) return false;
  r->type = static_cast<FileType>(type);
  if (!GetFixed8(in, &flags)) return false;
  r->inline_data = (flags & kFlagInline) != 0;
  std::string_view data;
  if (!GetFixed32(in, &r->mode) || !GetFixed32(in, &r->uid) || !GetFixed32(in, &r->gid) ||
      !GetFixed32(in, &r->nlink) || !GetFixed64(in, &r->size) || !GetFixed64(in, &r->rdev) ||
      !GetTime(in, &r->atime) || !GetTime(in, &r->mtime) || !GetTime(in, &r->ctime) ||
      !GetFixed64(in, &r->change)) {
    return false;
  }
  // Only records with contents in blocks have version 2.
  if (version == kRecordVersionWithStored && !HasStoredField(*r)) return false;
  r->stored = 0;
  if (version == kRecordVersionWithStored) {
    if (!GetFixed64(in, &r->stored) || r->stored > r->size) return false;
  } else if (HasStoredField(*r)) {
    r->stored = r->size;
  }
  if (!GetLengthPrefixed32(in, &data)) return false;
  if (skip_data && r->type != FileType::kSymlink) {
    r->data.clear();
  } else {
    r->data.assign(data);
  }
  return true;
}

Entry* Bucket::Find(std::string_view name) {
  for (auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

Entry* Bucket::FindIno(Ino ino) {
  for (auto& e : entries)
    if (e.ino == ino) return &e;
  return nullptr;
}

int Bucket::FreeSlot() const {
  // Entries are sorted by slot: the first gap is the smallest free slot.
  int expect = 0;
  for (const auto& e : entries) {
    if (e.slot != expect) return expect;
    ++expect;
  }
  return expect < kMaxSlots ? expect : -1;
}

void Bucket::Insert(Entry e) {
  auto pos = std::lower_bound(entries.begin(), entries.end(), e.slot,
                              [](const Entry& a, uint8_t s) { return a.slot < s; });
  entries.insert(pos, std::move(e));
}

void Bucket::Remove(std::string_view name) {
  std::erase_if(entries, [&](const Entry& e) { return e.name == name; });
}

std::string EncodeBucket(const Bucket& b) {
  std::string v;
  PutFixed8(&v, kFormatVersion);
  PutFixed8(&v, static_cast<uint8_t>(b.entries.size() - 1));  // 1..256 entries
  for (const auto& e : b.entries) {
    PutFixed8(&v, e.slot);
    PutLengthPrefixed16(&v, e.name);
    PutFixed64(&v, e.ino);
    PutFixed8(&v, static_cast<uint8_t>(e.type));
    PutFixed8(&v, e.embedded ? 1 : 0);
    if (e.embedded) EncodeInodeRecord(e.record, &v);
  }
  return v;
}

Status DecodeBucket(std::string_view value, Bucket* b, bool skip_data) {
  b->entries.clear();
  uint8_t version, count_minus_one;
  if (!GetFixed8(&value, &version) || version != kFormatVersion ||
      !GetFixed8(&value, &count_minus_one)) {
    return Status::Corruption("bad directory entry header");
  }
  b->entries.resize(count_minus_one + 1);
  for (auto& e : b->entries) {
    std::string_view name;
    uint8_t type, embedded;
    if (!GetFixed8(&value, &e.slot) || !GetLengthPrefixed16(&value, &name) ||
        !GetFixed64(&value, &e.ino) || !GetFixed8(&value, &type) || !ValidType(type) ||
        !GetFixed8(&value, &embedded)) {
      return Status::Corruption("bad directory entry");
    }
    e.name.assign(name);
    e.type = static_cast<FileType>(type);
    e.embedded = embedded != 0;
    if (e.embedded && !DecodeInodeRecord(&value, &e.record, skip_data)) {
      return Status::Corruption("bad inode record in entry '" + e.name + "'");
    }
  }
  if (!value.empty()) return Status::Corruption("trailing bytes after directory entries");
  return Status::OK();
}

std::string InodeKey(Ino ino) {
  std::string k;
  PutBigEndian64(&k, ino);
  return k;
}

bool ParseInodeKey(std::string_view key, Ino* ino) {
  if (key.size() != 8) return false;
  *ino = DecodeBigEndian64(key.data());
  return true;
}

std::string EncodeLocation(const InodeLocation& loc) {
  std::string v;
  PutFixed8(&v, kFormatVersion);
  PutFixed8(&v, loc.detached ? 1 : 0);
  if (loc.detached) {
    EncodeInodeRecord(loc.record, &v);
  } else {
    PutFixed64(&v, loc.parent);
    PutFixed64(&v, loc.bucket);
  }
  return v;
}

Status DecodeLocation(std::string_view value, InodeLocation* loc, bool skip_data) {
  uint8_t version, detached;
  if (!GetFixed8(&value, &version) || version != kFormatVersion || !GetFixed8(&value, &detached)) {
    return Status::Corruption("bad inode index header");
  }
  loc->detached = detached != 0;
  bool ok = loc->detached ? DecodeInodeRecord(&value, &loc->record, skip_data)
                          : GetFixed64(&value, &loc->parent) && GetFixed64(&value, &loc->bucket);
  if (!ok || !value.empty()) return Status::Corruption("bad inode index value");
  return Status::OK();
}

std::string BlockKey(Ino ino, uint64_t block) { return TwoPartKey(ino, block); }
bool ParseBlockKey(std::string_view key, Ino* ino, uint64_t* block) {
  return ParseTwoPartKey(key, ino, block);
}

std::string EncodeSuperblock(const Superblock& s) {
  std::string v;
  PutFixed8(&v, kFormatVersion);
  PutLengthPrefixed16(&v, s.hash_name);
  PutFixed32(&v, s.inline_threshold);
  PutFixed32(&v, s.block_size);
  return v;
}

Status DecodeSuperblock(std::string_view value, Superblock* s) {
  uint8_t version;
  std::string_view hash;
  if (!GetFixed8(&value, &version)) return Status::Corruption("empty superblock");
  if (version > kFormatVersion) {
    return Status::Corruption(
        "the store is in format version " + std::to_string(version) +
        ", written by a newer KVFS; this KVFS reads format version " +
        std::to_string(kFormatVersion) +
        " only: run the newer version (stores are never downgraded; see docs/operations.md)");
  }
  if (version != kFormatVersion) {
    return Status::Corruption("the store's superblock has unknown format version " +
                              std::to_string(version) + " (this KVFS reads format version " +
                              std::to_string(kFormatVersion) + "): not a KVFS store, or damaged");
  }
  if (!GetLengthPrefixed16(&value, &hash) || !GetFixed32(&value, &s->inline_threshold) ||
      !GetFixed32(&value, &s->block_size) || !value.empty()) {
    return Status::Corruption("bad superblock");
  }
  s->hash_name.assign(hash);
  return Status::OK();
}

std::string RangeKey(uint64_t range) { return PrefixedKey(kRangePrefix, range); }
bool ParseRangeKey(std::string_view key, uint64_t* range) {
  return ParsePrefixedKey(key, kRangePrefix, range);
}

std::string EncodeRangeRecord(const RangeRecord& r) {
  const uint8_t flags = (r.loading ? kRangeFlagLoading : 0) | (r.stub ? kRangeFlagStub : 0) |
                        (r.filling ? kRangeFlagFilling : 0);
  std::string v;
  PutFixed8(&v, flags != 0 ? kRangeRecordVersionWithFlags : kFormatVersion);
  PutFixed64(&v, r.owner);
  PutFixed64(&v, r.high_water);
  if (flags != 0) PutFixed8(&v, flags);
  return v;
}

Status DecodeRangeRecord(std::string_view value, RangeRecord* r) {
  uint8_t version, flags = 0;
  bool ok = GetFixed8(&value, &version) &&
            (version == kFormatVersion || version == kRangeRecordVersionWithFlags) &&
            GetFixed64(&value, &r->owner) && GetFixed64(&value, &r->high_water);
  if (ok && version == kRangeRecordVersionWithFlags) {
    ok = GetFixed8(&value, &flags) && (flags & ~kRangeFlagsKnown) == 0;
  }
  if (!ok || !value.empty()) return Status::Corruption("bad inode range record");
  r->loading = (flags & kRangeFlagLoading) != 0;
  r->stub = (flags & kRangeFlagStub) != 0;
  r->filling = (flags & kRangeFlagFilling) != 0;
  return Status::OK();
}

std::string UsageBytesKey(uint64_t range) { return PrefixedKey(kUsagePrefix, range) + "/b"; }
std::string UsageInodesKey(uint64_t range) { return PrefixedKey(kUsagePrefix, range) + "/i"; }
std::string TotalBytesKey() { return std::string(kUsagePrefix) + "total/b"; }
std::string TotalInodesKey() { return std::string(kUsagePrefix) + "total/i"; }

std::string OrphanKey(Ino ino) { return PrefixedKey(kOrphanPrefix, ino); }
bool ParseOrphanKey(std::string_view key, Ino* ino) {
  return ParsePrefixedKey(key, kOrphanPrefix, ino);
}

uint64_t SpaceUsed(const InodeRecord& r, uint32_t block_size) {
  if (r.inline_data) return r.size;
  return (r.stored + block_size - 1) / block_size * block_size;
}

}  // namespace kvfs::schema
