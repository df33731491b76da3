// FileSystem: a complete POSIX file system on top of a KVStore.
//
// Every operation works on inode numbers (64-bit, never reused), so any front
// end (the NFS FSAL, a FUSE mount, the kvfs tool, the ingest sidecar) can drive
// it. Every mutation is one atomic KVStore write batch, so a crash at any
// point leaves a consistent tree. Mutations return only once they are durable
// (Options::durable, group-committed across concurrent callers), except
// Write() with Stability::kUnstable, which becomes durable on the next Fsync,
// Sync or durable mutation.
//
// Errors are POSIX errno values carried in Status. An inode number that does
// not exist (any more) gives ESTALE; a name that does not exist gives ENOENT.
// All methods are
// thread-safe; reads take no locks, mutations lock only the directories and
// inodes they touch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv/kv_store.h"
#include "common/status.h"

namespace kvfs {

using Ino = uint64_t;

// The root directory's inode number.
inline constexpr Ino kRootIno = 1;
// Longest name of a directory entry, in bytes.
inline constexpr size_t kMaxNameLength = 255;
// Longest symlink target, in bytes.
inline constexpr size_t kMaxSymlinkLength = 4095;
// Largest file size (and largest offset + length of a write).
inline constexpr uint64_t kMaxFileSize = (1ull << 63) - 1;

enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kCharDevice = 4,
  kBlockDevice = 5,
  kFifo = 6,
  kSocket = 7,
};

// The S_IFMT bits for a type (S_IFREG, S_IFDIR, ...).
uint32_t FileTypeToMode(FileType t);

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  friend bool operator==(const Timespec&, const Timespec&) = default;
};

// The current wall-clock time.
Timespec Now();

// Attributes of an object, as getattr reports them.
struct Attributes {
  Ino ino = 0;
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits only (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;  // bytes; for directories the number of entries
  uint64_t rdev = 0;  // device number for device nodes
  Timespec atime, mtime, ctime;
  // Bumped on every change to the object (data, attributes or, for a
  // directory, its entries). Never decreases; NFS's change attribute.
  uint64_t change = 0;
  // Bytes of storage the contents occupy (size rounded up to blocks, or the
  // inline size), for st_blocks / space_used.
  uint64_t space_used = 0;
  // Parent directory. For directories the ".." target; for other objects
  // the directory of their only name, or 0 when the record is detached:
  // files with several hard links (their names may be in several
  // directories) and unlinked open files.
  Ino parent = 0;
};

// Ownership and permissions of a new object.
struct NewObject {
  uint32_t mode = 0644;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Which attributes SetAttr changes. Unset fields are left alone. Changing
// anything updates ctime; changing size also updates mtime.
struct SetAttrRequest {
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;  // truncate or extend (regular files only)
  // With size: only extend a smaller file, never truncate a larger one
  // (fallocate, NFSv4.2 ALLOCATE), atomically with concurrent writes.
  bool size_grow_only = false;
  std::optional<Timespec> atime;
  std::optional<Timespec> mtime;
  bool atime_now = false;  // set atime to the server's clock
  bool mtime_now = false;  // set mtime to the server's clock
};

// One directory entry as ReadDir reports it.
struct DirEntry {
  std::string name;
  Attributes attrs;
  // Passing this cookie to ReadDir resumes right after this entry, even after
  // other entries were inserted or removed. Always >= kFirstCookie.
  uint64_t cookie = 0;
};

// ReadDir cookie that starts from the beginning of a directory.
inline constexpr uint64_t kStartCookie = 0;
// Cookies below this value are never returned (NFS reserves 1 and 2).
inline constexpr uint64_t kFirstCookie = 3;

struct StatFsInfo {
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t total_inodes = 0;
  uint64_t used_inodes = 0;
  uint32_t block_size = 0;
  uint32_t max_name_length = kMaxNameLength;
};

// A top-level directory whose subtree a bulk loader wrote into an inode
// range reserved with FileSystem::ReserveRange, ready to be linked into the
// root by FileSystem::PublishTree (see docs/ingest.md). The loader writes
// every key below the top directory (its entries, the index and records of
// everything inside, blocks); PublishTree writes the top directory's own
// record and index, the root entry, the range record and the usage.
struct LoadedTree {
  uint64_t range = 0;
  // Its name in the root directory.
  std::string name;
  // The top directory's record: mode, uid, gid, nlink, size (its number of
  // entries), atime, mtime, ctime and change. Type must be kDirectory; ino,
  // rdev, space_used and parent are ignored.
  Attributes attrs;
  // One more than the highest local inode number used in the range.
  uint64_t high_water = 2;
  // Usage of the whole range, the top directory included, as the usage
  // counters count it (schema::UsageBytes per inode; inodes).
  uint64_t bytes = 0;
  uint64_t inodes = 1;
  // If `name` exists in the root: fail with EEXIST, or (replace) replace it
  // if it is a top-level directory, dropping its whole range in the same
  // batch.
  bool replace = false;
};

// A top-level directory to create as a stub (FileSystem::AddStubs).
struct StubTree {
  std::string name;
  NewObject obj;
  Timespec mtime;  // also its atime and ctime
};

// What FileSystem::ReadTreeState reports of a top-level directory.
struct TreeState {
  uint64_t range = 0;
  bool stub = false;     // empty, its contents elsewhere
  bool filling = false;  // contents being loaded (stub is still set)
  uint64_t high_water = 0;
  // Usage of the range, the top directory included.
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

// How durable a Write must be when it returns.
enum class Stability : uint8_t {
  kUnstable,  // may be lost in a crash until Fsync/Sync (NFS UNSTABLE)
  kStable,    // on stable storage when Write returns (NFS FILE_SYNC)
};

// Hashes a name to 64 bits for the directory entry key. Injectable so tests
// can force collisions; a store must always be opened with the hash it was
// created with (recorded in its superblock by name).
struct NameHasher {
  std::string name;  // recorded in the superblock
  std::function<uint64_t(std::string_view)> hash;
};
// The production hash (XXH3-64).
NameHasher DefaultNameHasher();

struct FileSystemOptions {
  // Reported by StatFs as the capacity.
  uint64_t capacity_bytes = 1ull << 40;
  uint64_t capacity_inodes = 1ull << 32;
  // Mutations return only when durable (group commit). Turning this off is
  // for tests and bulk tools that call Sync() themselves.
  bool durable = true;
  // Contents of files of at most this many bytes live inside the directory
  // entry; larger files live in blocks. Used when a store is created; an
  // existing store keeps the values in its superblock.
  uint32_t inline_threshold = 4096;
  // Size of a content block. Used when a store is created, like
  // inline_threshold.
  uint32_t block_size = 65536;
  NameHasher name_hasher = DefaultNameHasher();
};

class FileSystem {
 public:
  // Opens the file system stored in `store`, formatting an empty store.
  // Fails with EINVAL if the store was created with another name hash, or
  // EIO if it is not a KVFS store.
  static Status Open(const FileSystemOptions& options, std::unique_ptr<KVStore> store,
                     std::unique_ptr<FileSystem>* out);

  virtual ~FileSystem() = default;

  // Finds `name` in directory `parent`. "." and ".." are accepted.
  virtual Status Lookup(Ino parent, std::string_view name, Attributes* out) = 0;
  // ESTALE if `ino` does not exist (any more).
  virtual Status GetAttr(Ino ino, Attributes* out) = 0;
  virtual Status SetAttr(Ino ino, const SetAttrRequest& req, Attributes* out) = 0;

  // Creates a regular file. If it exists: EEXIST when `exclusive`, else the
  // existing file's attributes are returned (EISDIR etc. if not a file).
  virtual Status Create(Ino parent, std::string_view name, const NewObject& obj, bool exclusive,
                        Attributes* out) = 0;
  virtual Status Mkdir(Ino parent, std::string_view name, const NewObject& obj,
                       Attributes* out) = 0;
  // Creates a device node, FIFO or socket.
  virtual Status Mknod(Ino parent, std::string_view name, FileType type, const NewObject& obj,
                       uint64_t rdev, Attributes* out) = 0;
  virtual Status Symlink(Ino parent, std::string_view name, std::string_view target,
                         const NewObject& obj, Attributes* out) = 0;
  virtual Status Readlink(Ino ino, std::string* target) = 0;
  // Adds a new name for non-directory `ino`.
  virtual Status Link(Ino ino, Ino new_parent, std::string_view new_name, Attributes* out) = 0;
  // Removes a non-directory name (EISDIR for a directory). The object lives
  // on while it is open (see OpenFile) and is deleted at its last release.
  virtual Status Unlink(Ino parent, std::string_view name) = 0;
  // Removes an empty directory (ENOTEMPTY otherwise, ENOTDIR for others).
  virtual Status Rmdir(Ino parent, std::string_view name) = 0;
  // POSIX rename, replacing a compatible target. EXDEV if the object would
  // leave its inode range (see docs/schema.md).
  virtual Status Rename(Ino parent, std::string_view name, Ino new_parent,
                        std::string_view new_name) = 0;

  // Reads up to `size` bytes at `offset` into *out. Holes read as zeros.
  // *eof is set when the read reaches the end of the file.
  virtual Status Read(Ino ino, uint64_t offset, size_t size, std::string* out, bool* eof) = 0;
  // Writes `data` at `offset`, extending the file as needed.
  virtual Status Write(Ino ino, uint64_t offset, std::string_view data, Stability stability,
                       Attributes* out) = 0;
  // Calls fn(offset, length) for each run of stored data of regular file
  // `ino` that ends after `offset`, in ascending order, until fn returns
  // false; the gaps between runs (and after the last, up to the size) are
  // holes, which read as zeros. Runs start at `offset` or later. Costs time
  // in proportion to the blocks stored past `offset`, never to the size
  // (what SEEK_DATA/SEEK_HOLE and sparse tarballs need).
  virtual Status DataExtents(Ino ino, uint64_t offset,
                             const std::function<bool(uint64_t offset, uint64_t length)>& fn) = 0;
  // Makes everything written to `ino` (and everything else) durable.
  virtual Status Fsync(Ino ino) = 0;
  // Makes every completed operation durable.
  virtual Status Sync() = 0;

  // Marks `ino` open: if its last name is removed while open, its contents
  // stay readable until the matching CloseFile.
  virtual Status OpenFile(Ino ino) = 0;
  virtual Status CloseFile(Ino ino) = 0;

  // Lists directory `dir` starting after `cookie` (kStartCookie: from the
  // beginning), calling `fn` for each entry in cookie order until it returns
  // false or the directory ends. "." and ".." are not listed. *eof is set
  // when the end of the directory was reached.
  virtual Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn,
                         bool* eof) = 0;
  // The cookie ReadDir reports for entry `name` of `dir` (ENOENT if absent).
  virtual Status CookieOf(Ino dir, std::string_view name, uint64_t* cookie) = 0;

  virtual Status StatFs(StatFsInfo* out) = 0;

  // ---- Whole top-level directories (bulk ingest, eviction) -------------------
  // A top-level directory owns an inode range (docs/schema.md), so a whole
  // subtree can be added or dropped with a constant number of key-range
  // operations. These operations wait for every mutation in flight and hold
  // off new ones while their (single) batch is written; reads go on.

  // Reserves a fresh inode range, numbered at least `at_least` and above
  // every range this store has used, for a tree a bulk loader will write:
  // records it durably as loading and sets *range. Nothing in a loading range
  // is reachable. A crash before PublishTree or AbandonRange leaves the range
  // to Open, which deletes it.
  virtual Status ReserveRange(uint64_t at_least, uint64_t* range) = 0;
  // Links a loaded tree into the root in one durable batch (see LoadedTree).
  // EINVAL if tree.range is not a loading range or the record is not a
  // directory; EEXIST if the name exists (and is not a top-level directory
  // to replace). On success *replaced_range (if not null) is the range that
  // was dropped by a replacement, 0 if none.
  virtual Status PublishTree(const LoadedTree& tree, uint64_t* replaced_range) = 0;
  // Gives up a loading range: deletes every key in it and its record.
  // EINVAL if the range is not loading.
  virtual Status AbandonRange(uint64_t range) = 0;
  // Evicts top-level directory `name` with everything below it: removes its
  // root entry, range-deletes every key of its range, and subtracts the
  // range's usage from the totals, in one durable batch. The range number is
  // never used again. EINVAL if `name` is not a top-level directory (a
  // directory in the root). *dropped_range (if not null) is set to its range.
  virtual Status DropTree(std::string_view name, uint64_t* dropped_range) = 0;

  // ---- Stubs: top-level directories whose contents live elsewhere ---------------
  // The cache manager (cache/, docs/cache.md) shows every tarball of the
  // persistent store as a top-level directory. One that is not loaded is a
  // *stub*: an empty directory in a range of its own, marked so in its range
  // record. Filling loads the contents into the stub's range in place and
  // resetting drops them again, so the directory keeps its inode number (and
  // clients their handles) through loads and evictions.

  // Creates the stubs, each in a fresh range, in one durable batch. EEXIST,
  // with nothing created, if any of the names exists in the root (or appears
  // twice). *inos (if not null) receives their inode numbers, in order.
  virtual Status AddStubs(const std::vector<StubTree>& stubs, std::vector<Ino>* inos) = 0;
  // Marks stub `top` as filling, durably, before a bulk loader writes its
  // contents into its range; *high_water receives the range's high-water mark
  // (local numbers at or above it were never handed out). EINVAL if `top` is
  // not a stub (or is filling already).
  virtual Status BeginFill(Ino top, uint64_t* high_water) = 0;
  // Ends a fill whose keys the bulk loader committed: one durable batch writes
  // the top directory's record from tree.attrs (its name and inode number
  // stay), raises the high-water mark to tree.high_water, adds tree.bytes and
  // tree.inodes - 1 (the top is counted already) to the usage and clears the
  // stub and filling marks. EINVAL if tree.range is not filling.
  virtual Status FinishFill(const LoadedTree& tree) = 0;
  // Turns top-level directory `top` (loaded, or filling) back into an empty
  // stub in one durable batch: range deletes of everything below it, its
  // usage taken out of the totals, its record kept (size 0, nlink 2, change
  // bumped) and the high-water mark kept, so numbers are only handed out
  // again by a fill that chooses to (the same tarball loaded again).
  // EINVAL if `top` is not a top-level directory.
  virtual Status ResetToStub(Ino top) = 0;
  // The state of top-level directory `top` (EINVAL if it is not one).
  virtual Status ReadTreeState(Ino top, TreeState* out) = 0;

  // The underlying store (for tools such as fsck and dump).
  virtual KVStore* store() = 0;
};

}  // namespace kvfs
