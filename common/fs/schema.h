// The on-store layout of KVFS: key builders and value codecs.
//
// docs/schema.md describes every key and value byte by byte; this header is
// its executable form. Values start with a version byte so the layout can
// evolve; decoders reject versions they do not know with Status::Corruption.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"

namespace kvfs::schema {

inline constexpr uint8_t kFormatVersion = 1;

// ---- Inode numbers and ranges ----------------------------------------------
// An inode number is <range:32><local:32>. Range 0 holds the root directory
// (local 1) and the non-directories created directly in it; every top-level
// directory owns a range of its own and is its first inode (local 1).
inline constexpr int kRangeShift = 32;
inline constexpr uint64_t kLocalMask = (1ull << kRangeShift) - 1;
inline uint64_t RangeOf(Ino ino) { return ino >> kRangeShift; }
inline Ino MakeIno(uint64_t range, uint64_t local) { return (range << kRangeShift) | local; }
inline Ino RangeOwnerIno(uint64_t range) { return MakeIno(range, 1); }
// True if `ino` is the top-level directory that owns its range.
inline bool IsRangeOwner(Ino ino) { return RangeOf(ino) != 0 && (ino & kLocalMask) == 1; }

// ---- Directory entry keys ---------------------------------------------------
// Entries whose names hash to the same 55-bit bucket id share one key; each
// entry keeps a slot number (0..255) unique within its bucket for life.
inline constexpr int kBucketBits = 55;
inline constexpr int kMaxSlots = 256;
inline uint64_t BucketOf(uint64_t name_hash) { return name_hash >> (64 - kBucketBits); }
// <parent:8 BE><bucket:8 BE>
std::string EntryKey(Ino parent, uint64_t bucket);
// The first key of directory `dir` and the first key after it.
std::string DirBegin(Ino dir);
std::string DirEnd(Ino dir);
bool ParseEntryKey(std::string_view key, Ino* parent, uint64_t* bucket);

// ReadDir cookie <-> (bucket, slot).
inline uint64_t MakeCookie(uint64_t bucket, uint8_t slot) {
  return ((bucket << 8) | slot) + kFirstCookie;
}
inline void SplitCookie(uint64_t cookie, uint64_t* bucket, uint8_t* slot) {
  uint64_t c = cookie - kFirstCookie;
  *bucket = c >> 8;
  *slot = static_cast<uint8_t>(c & 0xff);
}

// ---- Inode records ------------------------------------------------------------
// The attributes (and inline contents) of one object.
struct InodeRecord {
  FileType type = FileType::kRegular;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  Timespec atime, mtime, ctime;
  uint64_t change = 0;
  // Contents are in `data` (inline) rather than in the blocks column.
  bool inline_data = true;
  // Regular files with contents in blocks: the bytes their blocks hold
  // (holes are not stored, so a sparse file holds fewer than its size). 0
  // for every other record.
  uint64_t stored = 0;
  // Inline file contents, or the symlink target.
  std::string data;
};
void EncodeInodeRecord(const InodeRecord& r, std::string* dst);
// Decodes a record from the front of *in. With skip_data the contents are
// not copied (r->data stays empty), for listings.
bool DecodeInodeRecord(std::string_view* in, InodeRecord* r, bool skip_data = false);

// One name in a bucket. `embedded` entries carry the object's record; the
// others point at a detached record in the inodes column (hard links).
struct Entry {
  uint8_t slot = 0;
  std::string name;
  Ino ino = 0;
  FileType type = FileType::kRegular;
  bool embedded = true;
  InodeRecord record;  // valid if embedded
};
// All entries of one bucket, ordered by slot.
struct Bucket {
  std::list<Entry> entries;  // a list: pointers to entries stay valid

  Entry* Find(std::string_view name);
  Entry* FindIno(Ino ino);
  // The smallest slot not in use, or -1 if the bucket is full.
  int FreeSlot() const;
  // Inserts keeping slot order.
  void Insert(Entry e);
  void Remove(std::string_view name);
};
std::string EncodeBucket(const Bucket& b);
Status DecodeBucket(std::string_view value, Bucket* b, bool skip_data = false);

// ---- Inode index (column kInodes) ----------------------------------------------
// ino -> where its record lives: embedded in the entry at <parent, bucket>,
// or detached (the record itself, for the root, hard-linked files and open
// unlinked files).
std::string InodeKey(Ino ino);
bool ParseInodeKey(std::string_view key, Ino* ino);
struct InodeLocation {
  bool detached = false;
  Ino parent = 0;       // if !detached
  uint64_t bucket = 0;  // if !detached
  InodeRecord record;   // if detached
};
std::string EncodeLocation(const InodeLocation& loc);
Status DecodeLocation(std::string_view value, InodeLocation* loc, bool skip_data = false);

// ---- Blocks (column kBlocks) ------------------------------------------------------
// <ino:8 BE><block number:8 BE> -> up to block_size bytes; a missing block
// or the part past a short block's end reads as zeros.
std::string BlockKey(Ino ino, uint64_t block);
bool ParseBlockKey(std::string_view key, Ino* ino, uint64_t* block);

// ---- Meta column --------------------------------------------------------------------
// "super" -> Superblock
inline constexpr std::string_view kSuperKey = "super";
struct Superblock {
  std::string hash_name;
  uint32_t inline_threshold = 0;
  uint32_t block_size = 0;
};
std::string EncodeSuperblock(const Superblock& s);
Status DecodeSuperblock(std::string_view value, Superblock* s);

// "range/<range:8 BE>" -> RangeRecord
inline constexpr std::string_view kRangePrefix = "range/";
std::string RangeKey(uint64_t range);
bool ParseRangeKey(std::string_view key, uint64_t* range);
struct RangeRecord {
  // The top-level directory the range was made for. It stays after that
  // directory is removed: range numbers are never reused.
  Ino owner = 0;
  uint64_t high_water = 0;  // every local number handed out is < high_water
  // The range is being bulk loaded (docs/ingest.md): its keys are not linked
  // into the tree yet. FileSystem::Open deletes what a crash left of such a
  // range. Encoded as record version 2 (flags byte, bit 0); a range that is
  // not loading keeps the version 1 encoding.
  bool loading = false;
  // The top-level directory is a stub: present and empty, its contents kept
  // elsewhere (the persistent store) until they are filled in (flags bit 1).
  bool stub = false;
  // Contents are being bulk loaded into the stub (flags bit 2): FileSystem::Open
  // turns what a crash left of the fill back into the empty stub.
  bool filling = false;
};
// The first and the first-after inode number of `range`: every key of the
// range in the entries, inodes and blocks columns lies in
// [key(RangeBegin), key(RangeEnd)) of that column's key builder.
inline Ino RangeBegin(uint64_t range) { return MakeIno(range, 0); }
inline Ino RangeEnd(uint64_t range) { return MakeIno(range + 1, 0); }
std::string EncodeRangeRecord(const RangeRecord& r);
Status DecodeRangeRecord(std::string_view value, RangeRecord* r);

// "usage/<range:8 BE>/b" and ".../i": bytes and inodes in use in a range;
// "usage/total/b" and "usage/total/i": the same for the whole store.
// Counters maintained with WriteBatch::Add.
inline constexpr std::string_view kUsagePrefix = "usage/";
std::string UsageBytesKey(uint64_t range);
std::string UsageInodesKey(uint64_t range);
std::string TotalBytesKey();
std::string TotalInodesKey();

// "cache/...": reserved for the cache manager's records (cache/cache_record.h).
inline constexpr std::string_view kCachePrefix = "cache/";

// "orphan/<ino:8 BE>" -> "": an unlinked file kept while open.
inline constexpr std::string_view kOrphanPrefix = "orphan/";
std::string OrphanKey(Ino ino);
bool ParseOrphanKey(std::string_view key, Ino* ino);

// Bytes a file's contents occupy in the store (space_used): inline contents,
// or its stored bytes rounded up to whole blocks.
uint64_t SpaceUsed(const InodeRecord& r, uint32_t block_size);
// Bytes counted against the usage counters for a record: what it stores
// (inline contents or symlink target, or the bytes of its blocks), never the
// holes of a sparse file.
inline uint64_t UsageBytes(const InodeRecord& r) {
  if (r.type == FileType::kRegular) return r.inline_data ? r.size : r.stored;
  return r.type == FileType::kSymlink ? r.size : 0;
}

}  // namespace kvfs::schema
