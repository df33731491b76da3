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

class TreeLifecycle;  // tree_lifecycle.h

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
  // Inode locations kept in memory (an exact cache of the inode index that
  // saves a point read per lookup of a record and per lock plan; about 58
  // bytes each, docs/limits.md). 0 turns the cache off.
  size_t location_cache_entries = 1 << 20;
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
  // Passes the bytes of regular file `ino` from `offset` up to offset +
  // `length` or its end, whichever comes first, to fn in order, in pieces
  // (holes as zeros), stopping at the first error fn returns. A piece is
  // valid only during its call (it may point into the store's cache). Costs
  // one record read and one scan of the blocks in the range, without
  // copying them: what whole-file readers (export) use instead of Read. The
  // blocks it reads are not kept in the store's block cache (a one-pass
  // read must not evict what clients are working on).
  virtual Status ReadStream(Ino ino, uint64_t offset, uint64_t length,
                            const std::function<Status(std::string_view piece)>& fn) = 0;
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
  // Makes everything written to `ino` durable. Returns at once when a sync
  // of the store since its last unstable write already did (an NFS COMMIT
  // of a file whose data another operation's group commit carried); with
  // FileSystemOptions::durable off it syncs every completed operation.
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

  // The whole-tree operations on this file system (tree_lifecycle.h): what
  // bulk loaders, eviction and the cache manager use. Owned by the file
  // system and valid as long as it is.
  virtual TreeLifecycle* trees() = 0;

  // The underlying store (for tools such as fsck and dump).
  virtual KVStore* store() = 0;
};

// Every entry of directory `dir` in ReadDir's order (following cookies to the
// end), for tools and tests: memory in proportion to the directory.
Status ListDirectory(FileSystem* fs, Ino dir, std::vector<DirEntry>* out);

}  // namespace kvfs
