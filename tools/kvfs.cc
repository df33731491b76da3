// kvfs: the command-line tool for KVFS stores.
//
// Inspects (fsck, dump, ls, stat, cat, statfs) and edits (put, mkdir, rm,
// import, demo) a KVFS store in a RocksDB directory that no server has open;
// `cache` sends the cache manager's commands to the server that has it open.
// Run without arguments for the usage text. Exit status: 0 on success, 1 if
// fsck found problems, 2 on any error (printed as "<strerror>: <message>").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_commands.h"
#include "common/fs/coding.h"
#include "common/fs/file_system.h"
#include "common/fs/fsck.h"
#include "common/fs/path.h"
#include "common/fs/schema.h"
#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "common/status.h"
#include "ingest/control_client.h"
#include "progress/progress_line.h"
#include "tools/tree_import.h"

namespace kvfs {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitProblems = 1;  // fsck found problems
constexpr int kExitError = 2;

constexpr const char* kUsage = R"(usage: kvfs <command> --db PATH [options] [arguments]

Inspects and edits a KVFS store: the key/value store directory PATH, which
no server may have open (except for 'cache', which asks that server). Paths inside the store are absolute ("/a/b").
Every command also takes --backend NAME (the store's key/value backend;
default: the one recorded in PATH, rocksdb for a new store) and
--kv-options name=value,... (the backend's options; see docs/kv-stores.md).

commands:
  fsck   --db PATH                   check every invariant of the store and
                                     print counts and each problem found
  dump   --db PATH [--column C] [--key HEX]
                                     print keys (hex) and decoded values of
                                     column C (meta, entries, inodes, blocks;
                                     default all); --key: only that key
  ls     --db PATH [-R] [PATH]       list a directory (default /), -R: its
                                     whole subtree
  stat   --db PATH PATH              print every attribute of PATH
  cat    --db PATH PATH              write the contents of file PATH to stdout
  put    --db PATH LOCALFILE PATH    copy a local file (- : stdin) to PATH,
                                     or into PATH if it is a directory
  mkdir  --db PATH [-p] PATH...      create directories; -p: with missing
                                     parents, no error if they exist
  rm     --db PATH [-r] PATH...      remove files, symlinks and empty
                                     directories; -r: whole subtrees
  import --db PATH LOCALDIR PATH     copy a local directory tree to PATH:
                                     directories, files, symlinks, special
                                     files, modes, owners, times, hard links
  statfs --db PATH                   print capacity and usage
  demo   --db PATH                   create a demo tree under /demo (a copy of
                                     a documentation directory of this machine
                                     and a generated sample), then list it
  backup --db PATH DEST              copy the store, consistent as of one
                                     moment, into new directory DEST (a
                                     store: kvfs fsck/ls --db DEST), while the
                                     server that has PATH open serves
                                     (RocksDB: hard links where it can)
  cache  --db PATH COMMAND [TREE]    the cache manager of the server that has
                                     PATH open (docs/cache.md): list (trees,
                                     state, size, last use), load TREE,
                                     flush [TREE] (write back), drop TREE
                                     (evict), refresh (list the persistent
                                     store again), quota. On a terminal, load
                                     and drop show the progress of the load
                                     or write-back they wait for

exit status: 0 success, 1 fsck found problems, 2 error
)";

// ---- Formatting ---------------------------------------------------------------------

// Lowercase hex of the first `max` bytes of `s` ("..." appended if cut).
std::string Hex(std::string_view s, size_t max = std::string_view::npos) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  const size_t n = std::min(max, s.size());
  out.reserve(2 * n + 3);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[static_cast<uint8_t>(s[i]) >> 4]);
    out.push_back(kDigits[static_cast<uint8_t>(s[i]) & 15]);
  }
  if (n < s.size()) out += "...";
  return out;
}

// Parses hex digits (an even number of them) into bytes.
bool ParseHex(std::string_view hex, std::string* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

// `s` in double quotes, with quotes, backslashes and non-printable bytes
// escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (std::isprint(static_cast<unsigned char>(c))) {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<uint8_t>(c));
      out += buf;
    }
  }
  return out + "\"";
}

// "2026-01-02 03:04:05.123456789" (UTC).
std::string FormatTime(const Timespec& t) {
  time_t sec = static_cast<time_t>(t.sec);
  struct tm tm;
  char buf[64];
  if (gmtime_r(&sec, &tm) == nullptr) return std::to_string(t.sec) + "s";
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%09u", t.nsec);
  return buf;
}

// "2026-01-02 03:04" (UTC), for listings.
std::string ShortTime(const Timespec& t) { return FormatTime(t).substr(0, 16); }

// The long name of a type, for stat.
const char* TypeName(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return "regular file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symbolic link";
    case FileType::kCharDevice:
      return "character device";
    case FileType::kBlockDevice:
      return "block device";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
  }
  return "unknown";
}

// Short type names for dumps.
const char* TypeTag(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return "reg";
    case FileType::kDirectory:
      return "dir";
    case FileType::kSymlink:
      return "lnk";
    case FileType::kCharDevice:
      return "chr";
    case FileType::kBlockDevice:
      return "blk";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "sock";
  }
  return "?";
}

// "drwxr-xr-x" as ls prints it.
std::string ModeString(FileType type, uint32_t mode) {
  static constexpr char kTypeChars[] = "?-dlcbps";
  std::string s(10, '-');
  s[0] = kTypeChars[static_cast<int>(type)];
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (0400 >> i)) s[1 + i] = rwx[i];
  }
  auto special = [&](int pos, uint32_t bit, char set_exec, char set_noexec) {
    if (mode & bit) s[pos] = s[pos] == '-' ? set_noexec : set_exec;
  };
  special(3, S_ISUID, 's', 'S');
  special(6, S_ISGID, 's', 'S');
  special(9, S_ISVTX, 't', 'T');
  return s;
}

// Permission bits as four octal digits.
std::string Octal(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode);
  return buf;
}

// "4294967298 (range 1, local 2)".
std::string InoString(Ino ino) {
  return std::to_string(ino) + " (range " + std::to_string(schema::RangeOf(ino)) + ", local " +
         std::to_string(ino & schema::kLocalMask) + ")";
}

// ---- Dump -------------------------------------------------------------------------------

// Every field of an inode record on one line.
std::string RecordString(const schema::InodeRecord& r) {
  std::string s = std::string("type=") + TypeTag(r.type) + " mode=" + Octal(r.mode) +
                  " uid=" + std::to_string(r.uid) + " gid=" + std::to_string(r.gid) +
                  " nlink=" + std::to_string(r.nlink) + " size=" + std::to_string(r.size) +
                  " rdev=" + std::to_string(r.rdev) + " atime=" + Quote(FormatTime(r.atime)) +
                  " mtime=" + Quote(FormatTime(r.mtime)) + " ctime=" + Quote(FormatTime(r.ctime)) +
                  " change=" + std::to_string(r.change);
  if (r.type == FileType::kSymlink) {
    s += " target=" + Quote(r.data);
  } else if (r.type == FileType::kRegular) {
    s += r.inline_data ? " inline data=" + std::to_string(r.data.size()) + "B:" + Hex(r.data, 16)
                       : std::string(" in blocks");
  }
  return s;
}

// Describes one meta column key/value.
std::string DescribeMeta(std::string_view key, std::string_view value) {
  uint64_t n;
  if (key == schema::kSuperKey) {
    schema::Superblock sb;
    Status s = schema::DecodeSuperblock(value, &sb);
    if (!s.ok()) return "superblock UNDECODABLE (" + s.message() + ")";
    return "superblock hash=" + Quote(sb.hash_name) +
           " inline_threshold=" + std::to_string(sb.inline_threshold) +
           " block_size=" + std::to_string(sb.block_size);
  }
  if (schema::ParseRangeKey(key, &n)) {
    schema::RangeRecord r;
    Status s = schema::DecodeRangeRecord(value, &r);
    if (!s.ok()) return "range " + std::to_string(n) + " UNDECODABLE (" + s.message() + ")";
    return "range " + std::to_string(n) + " owner=" + std::to_string(r.owner) +
           " high_water=" + std::to_string(r.high_water) + (r.loading ? " loading" : "");
  }
  if (schema::ParseOrphanKey(key, &n)) return "orphan ino=" + InoString(n);
  if (key.starts_with(schema::kUsagePrefix)) {
    std::string what;
    if (key == schema::TotalBytesKey()) {
      what = "total bytes";
    } else if (key == schema::TotalInodesKey()) {
      what = "total inodes";
    } else {
      std::string_view rest = key.substr(schema::kUsagePrefix.size());
      if (rest.size() == 10 && rest[8] == '/' && (rest[9] == 'b' || rest[9] == 'i')) {
        what = "range " + std::to_string(DecodeBigEndian64(rest.data())) +
               (rest[9] == 'b' ? " bytes" : " inodes");
      } else {
        what = "UNKNOWN " + Quote(key);
      }
    }
    return "usage " + what + " = " + std::to_string(DecodeCounter(value)) +
           (value.size() == 8 ? "" : " (MALFORMED: " + std::to_string(value.size()) + " bytes)");
  }
  return "UNKNOWN key " + Quote(key) + " value=" + Hex(value, 32);
}

// Describes one bucket of directory entries (one line per entry).
std::string DescribeEntries(std::string_view key, std::string_view value) {
  Ino dir;
  uint64_t bucket;
  if (!schema::ParseEntryKey(key, &dir, &bucket)) return "MALFORMED entry key";
  schema::Bucket b;
  Status s = schema::DecodeBucket(value, &b);
  std::string out = "dir=" + std::to_string(dir) + " bucket=" + std::to_string(bucket);
  if (!s.ok()) return out + " UNDECODABLE (" + s.message() + ") value=" + Hex(value, 32);
  out += " entries=" + std::to_string(b.entries.size());
  for (const schema::Entry& e : b.entries) {
    out += "\n    slot=" + std::to_string(e.slot) + " name=" + Quote(e.name) +
           " ino=" + std::to_string(e.ino) + " type=" + TypeTag(e.type) +
           " cookie=" + std::to_string(schema::MakeCookie(bucket, e.slot));
    out += e.embedded ? " embedded " + RecordString(e.record) : " link (record detached)";
  }
  return out;
}

// Describes one inode index key/value.
std::string DescribeInode(std::string_view key, std::string_view value) {
  Ino ino;
  if (!schema::ParseInodeKey(key, &ino)) return "MALFORMED inode key";
  schema::InodeLocation loc;
  Status s = schema::DecodeLocation(value, &loc);
  std::string out = "ino=" + InoString(ino);
  if (!s.ok()) return out + " UNDECODABLE (" + s.message() + ") value=" + Hex(value, 32);
  if (loc.detached) return out + " detached " + RecordString(loc.record);
  return out + " embedded in dir=" + std::to_string(loc.parent) +
         " bucket=" + std::to_string(loc.bucket);
}

// Describes one content block.
std::string DescribeBlock(std::string_view key, std::string_view value) {
  Ino ino;
  uint64_t block;
  if (!schema::ParseBlockKey(key, &ino, &block)) return "MALFORMED block key";
  return "ino=" + std::to_string(ino) + " block=" + std::to_string(block) +
         " length=" + std::to_string(value.size()) + " data=" + Hex(value, 16);
}

// Decodes a key/value pair of column `c`.
std::string Describe(Column c, std::string_view key, std::string_view value) {
  switch (c) {
    case Column::kMeta:
      return DescribeMeta(key, value);
    case Column::kEntries:
      return DescribeEntries(key, value);
    case Column::kInodes:
      return DescribeInode(key, value);
    case Column::kBlocks:
      return DescribeBlock(key, value);
  }
  return "";
}

// Prints one dump line: column, key in hex, decoded value.
void PrintKV(Column c, std::string_view key, std::string_view value) {
  std::cout << ColumnName(c) << ' ' << Hex(key) << "  " << Describe(c, key, value) << '\n';
}

// ---- Arguments and opening --------------------------------------------------------------

// The parsed command line of one command.
struct Args {
  std::string db;                     // --db
  std::string backend;                // --backend
  std::string kv_options;             // --kv-options
  std::optional<std::string> column;  // dump --column
  std::optional<std::string> key;     // dump --key (hex)
  std::set<char> flags;               // single-letter flags (-R, -p, -r)
  std::vector<std::string> operands;  // positional arguments
};

// Fails with a message for the usage error `what`.
Status UsageError(const std::string& what) {
  return Status::InvalidArgument(what + " (run 'kvfs' for usage)");
}

// The name hasher recorded in a superblock by `name`.
Status HasherByName(const std::string& name, NameHasher* out) {
  NameHasher h = DefaultNameHasher();
  if (h.name != name) {
    return Status::NotSupported("store uses name hash '" + name + "', unknown to this tool");
  }
  *out = std::move(h);
  return Status::OK();
}

// Opens the store named by --db with --backend and --kv-options (creating it
// if `create`).
Status OpenStore(const Args& args, bool create, std::unique_ptr<KVStore>* out) {
  if (args.db.empty()) return UsageError("--db PATH is required");
  KVStoreSpec spec;
  KVFS_RETURN_IF_ERROR(ParseKVStoreSpec(args.db, args.backend, args.kv_options, &spec));
  spec.create_if_missing = create;
  return OpenKVStore(spec, out);
}

// Reads the superblock; NotFound if there is none.
Status ReadSuperblock(KVStore* store, schema::Superblock* sb) {
  std::string value;
  Status s = store->Get(Column::kMeta, schema::kSuperKey, &value);
  if (s.IsNotFound()) return Status::NotFound("no KVFS superblock: not a KVFS store");
  KVFS_RETURN_IF_ERROR(s);
  return schema::DecodeSuperblock(value, sb);
}

// Opens the file system, with the parameters its superblock records. With
// `create`, a missing store is created and formatted.
Status OpenFs(const Args& args, bool create, std::unique_ptr<FileSystem>* out) {
  std::unique_ptr<KVStore> store;
  KVFS_RETURN_IF_ERROR(OpenStore(args, create, &store));
  FileSystemOptions opts;
  opts.durable = false;  // commands Sync() once at the end
  schema::Superblock sb;
  Status s = ReadSuperblock(store.get(), &sb);
  if (s.ok()) {
    KVFS_RETURN_IF_ERROR(HasherByName(sb.hash_name, &opts.name_hasher));
    opts.inline_threshold = sb.inline_threshold;
    opts.block_size = sb.block_size;
  } else if (!s.IsNotFound() || !create) {
    return s;
  }
  return FileSystem::Open(opts, std::move(store), out);
}

// A new object owned by this process with `mode` less the umask.
NewObject NewObjectWithMode(uint32_t mode) {
  mode_t mask = umask(0);
  umask(mask);
  return NewObject{mode & ~mask, static_cast<uint32_t>(geteuid()),
                   static_cast<uint32_t>(getegid())};
}

// `s` with `path` in front of its message.
Status WithPath(const std::string& path, const Status& s) {
  return s.ok() ? s : Status::FromErrno(s.posix_errno(), path + ": " + s.message());
}

// Symbolic links are always rwxrwxrwx.
NewObject SymlinkObject() {
  return NewObject{0777, static_cast<uint32_t>(geteuid()), static_cast<uint32_t>(getegid())};
}

// ---- Commands -------------------------------------------------------------------------------
// Each Run* function implements one command; *exit_code may be set to a
// non-error exit status other than 0 (fsck's 1).

Status RunFsck(const Args& args, int* exit_code) {
  std::unique_ptr<KVStore> store;
  KVFS_RETURN_IF_ERROR(OpenStore(args, /*create=*/false, &store));
  NameHasher hasher = DefaultNameHasher();
  schema::Superblock sb;
  // Without a readable superblock Fsck reports the problem itself.
  if (ReadSuperblock(store.get(), &sb).ok()) {
    KVFS_RETURN_IF_ERROR(HasherByName(sb.hash_name, &hasher));
  }
  FsckReport report;
  KVFS_RETURN_IF_ERROR(Fsck(store.get(), hasher, &report));
  std::cout << "directories: " << report.directories << "\nfiles: " << report.files
            << "\nentries: " << report.entries << "\nblocks: " << report.blocks
            << "\nbytes: " << report.bytes << '\n';
  for (const std::string& p : report.problems) std::cout << "problem: " << p << '\n';
  if (report.ok()) {
    std::cout << "consistent\n";
  } else {
    std::cout << report.problems.size() << " problems\n";
    *exit_code = kExitProblems;
  }
  return Status::OK();
}

// The column called `name` (ColumnName).
Status ParseColumn(const std::string& name, Column* out) {
  for (int c = 0; c < kNumColumns; ++c) {
    if (name == ColumnName(static_cast<Column>(c))) {
      *out = static_cast<Column>(c);
      return Status::OK();
    }
  }
  return UsageError("unknown column '" + name + "' (meta, entries, inodes or blocks)");
}

Status RunDump(const Args& args, int*) {
  std::vector<Column> columns;
  if (args.column) {
    Column c = Column::kMeta;
    KVFS_RETURN_IF_ERROR(ParseColumn(*args.column, &c));
    columns.push_back(c);
  } else {
    for (int c = 0; c < kNumColumns; ++c) columns.push_back(static_cast<Column>(c));
  }
  std::string key;
  if (args.key && !ParseHex(*args.key, &key)) {
    return UsageError("--key must be an even number of hex digits");
  }
  std::unique_ptr<KVStore> store;
  KVFS_RETURN_IF_ERROR(OpenStore(args, /*create=*/false, &store));
  auto snapshot = store->GetSnapshot();
  bool found = false;
  for (Column c : columns) {
    if (args.key) {
      std::string value;
      ReadOptions ro;
      ro.snapshot = snapshot.get();
      Status s = store->Get(ro, c, key, &value);
      if (s.IsNotFound()) continue;
      KVFS_RETURN_IF_ERROR(s);
      PrintKV(c, key, value);
      found = true;
      continue;
    }
    IteratorOptions io;
    io.snapshot = snapshot.get();
    auto it = store->NewIterator(c, io);
    for (it->Seek(""); it->Valid(); it->Next()) PrintKV(c, it->key(), it->value());
    KVFS_RETURN_IF_ERROR(it->status());
  }
  if (args.key && !found) return Status::NotFound("key " + *args.key + " not found");
  return Status::OK();
}

// The entries of directory `dir`, sorted by name.
Status ListSorted(FileSystem* fs, Ino dir, std::vector<DirEntry>* out) {
  KVFS_RETURN_IF_ERROR(ListDirectory(fs, dir, out));
  std::sort(out->begin(), out->end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return Status::OK();
}

// One ls -l line for object `a` called `name`.
Status PrintLong(FileSystem* fs, const std::string& name, const Attributes& a) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%s %3u %5u %5u %10" PRIu64 " %s ",
                ModeString(a.type, a.mode).c_str(), a.nlink, a.uid, a.gid, a.size,
                ShortTime(a.mtime).c_str());
  std::cout << buf << name;
  if (a.type == FileType::kSymlink) {
    std::string target;
    KVFS_RETURN_IF_ERROR(fs->Readlink(a.ino, &target));
    std::cout << " -> " << target;
  }
  std::cout << '\n';
  return Status::OK();
}

// Lists directory `dir` at `path`; with `recursive`, then each subdirectory.
Status ListTree(FileSystem* fs, const std::string& path, Ino dir, bool recursive) {
  std::vector<DirEntry> entries;
  KVFS_RETURN_IF_ERROR(ListSorted(fs, dir, &entries));
  if (recursive) std::cout << path << ":\n";
  for (const DirEntry& e : entries) KVFS_RETURN_IF_ERROR(PrintLong(fs, e.name, e.attrs));
  if (!recursive) return Status::OK();
  for (const DirEntry& e : entries) {
    if (e.attrs.type != FileType::kDirectory) continue;
    std::cout << '\n';
    KVFS_RETURN_IF_ERROR(ListTree(fs, JoinPath(path, e.name), e.attrs.ino, true));
  }
  return Status::OK();
}

Status RunLs(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/false, &fs));
  const std::string path = args.operands.empty() ? "/" : args.operands[0];
  Attributes a;
  KVFS_RETURN_IF_ERROR(ResolvePath(fs.get(), path, &a, /*follow_last=*/true));
  if (a.type != FileType::kDirectory) return PrintLong(fs.get(), path, a);
  return ListTree(fs.get(), path, a.ino, args.flags.count('R') > 0);
}

Status RunStat(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/false, &fs));
  Attributes a;
  KVFS_RETURN_IF_ERROR(ResolvePath(fs.get(), args.operands[0], &a));
  std::cout << "path: " << args.operands[0] << "\ninode: " << InoString(a.ino)
            << "\ntype: " << TypeName(a.type) << "\nmode: " << Octal(a.mode) << " ("
            << ModeString(a.type, a.mode) << ")\nlinks: " << a.nlink << "\nuid: " << a.uid
            << "\ngid: " << a.gid << "\nsize: " << a.size << "\nspace used: " << a.space_used
            << "\nrdev: " << a.rdev << "\natime: " << FormatTime(a.atime)
            << "\nmtime: " << FormatTime(a.mtime) << "\nctime: " << FormatTime(a.ctime)
            << "\nchange: " << a.change << "\nparent: " << a.parent << '\n';
  if (a.type == FileType::kSymlink) {
    std::string target;
    KVFS_RETURN_IF_ERROR(fs->Readlink(a.ino, &target));
    std::cout << "target: " << target << '\n';
  }
  return Status::OK();
}

Status RunCat(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/false, &fs));
  Attributes a;
  KVFS_RETURN_IF_ERROR(ResolvePath(fs.get(), args.operands[0], &a, /*follow_last=*/true));
  std::string buf;
  bool eof = false;
  for (uint64_t off = 0; !eof; off += buf.size()) {
    KVFS_RETURN_IF_ERROR(WithPath(args.operands[0], fs->Read(a.ino, off, 1 << 20, &buf, &eof)));
    std::cout.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!std::cout) return Status::IOError("writing to stdout failed");
  }
  std::cout.flush();
  return Status::OK();
}

// Creates (or empties) regular file `path` with contents from local `fd`.
Status PutFile(FileSystem* fs, int fd, const std::string& local, std::string path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + local);
  Attributes target;
  if (ResolvePath(fs, path, &target, /*follow_last=*/true).ok() &&
      target.type == FileType::kDirectory) {
    std::string base = local;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    path = JoinPath(path, base.substr(base.rfind('/') + 1));
  }
  Attributes parent;
  std::string name;
  KVFS_RETURN_IF_ERROR(ResolveParent(fs, path, &parent, &name));
  Attributes a;
  const uint32_t mode = S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0666;
  KVFS_RETURN_IF_ERROR(
      WithPath(path, fs->Create(parent.ino, name, NewObjectWithMode(mode), false, &a)));
  if (a.type != FileType::kRegular) {
    return Status::Exists("'" + path + "' exists and is not a regular file");
  }
  uint64_t size;
  KVFS_RETURN_IF_ERROR(CopyFileContents(fs, fd, a.ino, &size));
  return fs->Sync();
}

Status RunPut(const Args& args, int*) {
  const std::string& local = args.operands[0];
  int fd = local == "-" ? dup(STDIN_FILENO) : open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + local);
  std::unique_ptr<FileSystem> fs;
  Status s = OpenFs(args, /*create=*/true, &fs);
  if (s.ok()) s = PutFile(fs.get(), fd, local == "-" ? "stdin" : local, args.operands[1]);
  close(fd);
  return s;
}

// mkdir -p: creates each missing directory of `path`.
Status MakeParents(FileSystem* fs, const std::string& path) {
  std::string prefix = "/";
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string_view part = std::string_view(path).substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty()) continue;
    prefix = JoinPath(prefix, part);
    Attributes a;
    Status s = ResolvePath(fs, prefix + "/", &a);
    if (!s.IsNotFound()) {
      KVFS_RETURN_IF_ERROR(s);
      continue;
    }
    Attributes parent;
    std::string name;
    KVFS_RETURN_IF_ERROR(ResolveParent(fs, prefix, &parent, &name));
    KVFS_RETURN_IF_ERROR(
        WithPath(prefix, fs->Mkdir(parent.ino, name, NewObjectWithMode(0777), &a)));
  }
  return Status::OK();
}

Status RunMkdir(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/true, &fs));
  for (const std::string& path : args.operands) {
    if (args.flags.count('p')) {
      KVFS_RETURN_IF_ERROR(MakeParents(fs.get(), path));
      continue;
    }
    Attributes parent, a;
    std::string name;
    KVFS_RETURN_IF_ERROR(ResolveParent(fs.get(), path, &parent, &name));
    KVFS_RETURN_IF_ERROR(WithPath(path, fs->Mkdir(parent.ino, name, NewObjectWithMode(0777), &a)));
  }
  return fs->Sync();
}

// Removes `name` from directory `parent`; with `recursive`, a whole subtree.
Status RemoveName(FileSystem* fs, Ino parent, const std::string& name, bool recursive) {
  Attributes a;
  KVFS_RETURN_IF_ERROR(fs->Lookup(parent, name, &a));
  if (a.type != FileType::kDirectory) return fs->Unlink(parent, name);
  if (recursive) {
    std::vector<DirEntry> entries;
    KVFS_RETURN_IF_ERROR(ListDirectory(fs, a.ino, &entries));
    for (const DirEntry& e : entries) KVFS_RETURN_IF_ERROR(RemoveName(fs, a.ino, e.name, true));
  }
  return fs->Rmdir(parent, name);
}

Status RunRm(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/false, &fs));
  for (const std::string& path : args.operands) {
    Attributes parent;
    std::string name;
    KVFS_RETURN_IF_ERROR(ResolveParent(fs.get(), path, &parent, &name));
    KVFS_RETURN_IF_ERROR(
        WithPath(path, RemoveName(fs.get(), parent.ino, name, args.flags.count('r') > 0)));
  }
  return fs->Sync();
}

// Imports `local` to `dest` and prints what was copied and what failed.
Status ImportAndReport(FileSystem* fs, const std::string& local, const std::string& dest) {
  ImportStats stats;
  Status s = ImportTree(fs, local, dest, &stats);
  for (const std::string& e : stats.errors) std::cerr << "kvfs: import: " << e << '\n';
  std::cout << "imported " << local << " to " << dest << ": " << stats.directories
            << " directories, " << stats.files << " files (" << stats.bytes << " bytes), "
            << stats.symlinks << " symlinks, " << stats.hard_links << " hard links, "
            << stats.specials << " special files\n";
  KVFS_RETURN_IF_ERROR(fs->Sync());  // keep what was imported
  return s;
}

Status RunImport(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/true, &fs));
  return ImportAndReport(fs.get(), args.operands[0], args.operands[1]);
}

// Prints what StatFs reports.
Status PrintStatFs(FileSystem* fs) {
  StatFsInfo info;
  KVFS_RETURN_IF_ERROR(fs->StatFs(&info));
  std::cout << "bytes: " << info.used_bytes << " used of " << info.total_bytes
            << "\ninodes: " << info.used_inodes << " used of " << info.total_inodes
            << "\nblock size: " << info.block_size << "\nmax name length: " << info.max_name_length
            << '\n';
  return Status::OK();
}

Status RunStatFs(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/false, &fs));
  return PrintStatFs(fs.get());
}

// ---- Backup (through the running server, or here) -------------------------------------------

// Copies the key/value store, consistent as of one moment, into new
// directory operands[0]: through the server that has it open (its control
// socket, op=checkpoint) while it serves, else opened here.
Status RunBackup(const Args& args, int*) {
  KVStoreSpec spec;
  KVFS_RETURN_IF_ERROR(ParseKVStoreSpec(args.db, args.backend, args.kv_options, &spec));
  std::string dest = std::filesystem::absolute(args.operands[0]).lexically_normal().string();
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  ingest::Message response;
  bool via_server = false;
  KVFS_RETURN_IF_ERROR(
      ingest::RunRequest(spec, {{"op", "checkpoint"}, {"dest", dest}}, &response, &via_server));
  KVFS_RETURN_IF_ERROR(ingest::ResponseStatus(response));
  std::cout << "copied " << args.db << " to " << dest << (via_server ? " [via server]" : "")
            << '\n';
  return Status::OK();
}

// ---- Cache commands (through the running server) ----------------------------------------

Status RunCache(const Args& args, int*) {
  static const std::set<std::string> kNeedName = {"load", "drop"};
  static const std::set<std::string> kAll = {"list", "load", "flush", "drop", "refresh", "quota"};
  const std::string& what = args.operands[0];
  if (kAll.count(what) == 0) return UsageError("cache: unknown command '" + what + "'");
  if (kNeedName.count(what) > 0 && args.operands.size() < 2) {
    return UsageError("cache " + what + ": which tree?");
  }
  if ((what == "list" || what == "refresh" || what == "quota") && args.operands.size() > 1) {
    return UsageError("cache " + what + " takes no tree");
  }
  ingest::Message request{{"op", "cache-" + what}};
  if (args.operands.size() > 1) request["name"] = args.operands[1];
  ingest::Message response;
  const std::string socket = ingest::ControlSocketPath(args.db);
  // While a load, or a write-back of one tree, runs: its progress on a
  // terminal (the server registers it under the tree's transfer id).
  progress::ProgressLine line(STDERR_FILENO, args.operands.size() > 1 && ::isatty(STDERR_FILENO));
  const std::string id = args.operands.size() > 1 ? cache::TransferIdOf(args.operands[1]) : "";
  auto poll = [&](progress::ProgressSnapshot* snap) {
    return ingest::AskProgress(socket, id, snap);
  };
  // A listing comes in pages, each printed as it arrives.
  for (;;) {
    Status s = progress::RunShowingProgress(
        &line, [&] { return ingest::CallControlServer(socket, request, &response); }, poll);
    if (s.IsNotFound() || s.posix_errno() == ECONNREFUSED) {
      return Status::FromErrno(s.posix_errno(), "no server serves " + args.db +
                                                    " (the cache commands talk to the running "
                                                    "server): " +
                                                    s.message());
    }
    KVFS_RETURN_IF_ERROR(s);
    KVFS_RETURN_IF_ERROR(ingest::ResponseStatus(response));
    std::cout << cache::FormatCacheResponse(request, response);
    if (!cache::NextCacheListRequest(request, response, &request)) return Status::OK();
  }
}

// ---- Demo -----------------------------------------------------------------------------------

// Local directories the demo copies, the first one present.
constexpr const char* kDemoSources[] = {"/usr/share/doc/cmake", "/usr/share/doc/cmake-data",
                                        "/usr/share/doc/git", "/usr/share/doc/bash"};

// Writes `data` at `offset` of a new file `name` in `dir`.
Status DemoFile(FileSystem* fs, Ino dir, const std::string& name, uint64_t offset,
                std::string_view data, Attributes* out) {
  KVFS_RETURN_IF_ERROR(fs->Create(dir, name, NewObjectWithMode(0644), true, out));
  return fs->Write(out->ino, offset, data, Stability::kUnstable, out);
}

// Creates a sample of every kind of object under directory `dir`: inline,
// block and sparse files, a subdirectory, a hard link, a symlink and a FIFO.
Status GenerateSample(FileSystem* fs, Ino dir) {
  Attributes readme, a, docs;
  KVFS_RETURN_IF_ERROR(
      DemoFile(fs, dir, "README", 0,
               "A generated KVFS sample: small files live inside their directory entry,\n"
               "larger ones in 64 KiB blocks; holes take no space.\n",
               &readme));
  std::string text;
  for (int i = 0; text.size() < 5000; ++i) text += "line " + std::to_string(i) + "\n";
  KVFS_RETURN_IF_ERROR(DemoFile(fs, dir, "medium.txt", 0, text, &a));
  std::string blocks(200000, '\0');
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<char>(i * 7 + i / 256);
  KVFS_RETURN_IF_ERROR(DemoFile(fs, dir, "large.bin", 0, blocks, &a));
  KVFS_RETURN_IF_ERROR(DemoFile(fs, dir, "sparse.img", 10 << 20, "end of a sparse file\n", &a));
  KVFS_RETURN_IF_ERROR(fs->Mkdir(dir, "docs", NewObjectWithMode(0755), &docs));
  KVFS_RETURN_IF_ERROR(DemoFile(fs, docs.ino, "a.txt", 0, "first\n", &a));
  KVFS_RETURN_IF_ERROR(DemoFile(fs, docs.ino, "b.txt", 0, "second\n", &a));
  KVFS_RETURN_IF_ERROR(fs->Link(readme.ino, docs.ino, "README.link", &a));
  KVFS_RETURN_IF_ERROR(fs->Symlink(dir, "latest", "large.bin", SymlinkObject(), &a));
  return fs->Mknod(dir, "fifo", FileType::kFifo, NewObjectWithMode(0644), 0, &a);
}

Status RunDemo(const Args& args, int*) {
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(OpenFs(args, /*create=*/true, &fs));
  Attributes demo;
  Status s = fs->Lookup(kRootIno, "demo", &demo);
  if (s.ok()) {
    std::cout << "/demo exists already; listing it\n";
  } else if (s.IsNotFound()) {
    KVFS_RETURN_IF_ERROR(fs->Mkdir(kRootIno, "demo", NewObjectWithMode(0755), &demo));
    for (const char* src : kDemoSources) {
      struct stat st;
      if (stat(src, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      std::string dest =
          JoinPath("/demo", std::string_view(src).substr(std::strlen("/usr/share/doc/")));
      KVFS_RETURN_IF_ERROR(ImportAndReport(fs.get(), src, dest));
      break;
    }
    Attributes sample;
    KVFS_RETURN_IF_ERROR(fs->Mkdir(demo.ino, "generated", NewObjectWithMode(0755), &sample));
    KVFS_RETURN_IF_ERROR(GenerateSample(fs.get(), sample.ino));
    KVFS_RETURN_IF_ERROR(fs->Sync());
    std::cout << "created /demo\n";
  } else {
    return s;
  }
  std::cout << '\n';
  KVFS_RETURN_IF_ERROR(ListTree(fs.get(), "/demo", demo.ino, /*recursive=*/true));
  std::cout << '\n';
  KVFS_RETURN_IF_ERROR(PrintStatFs(fs.get()));
  FsckReport report;
  KVFS_RETURN_IF_ERROR(Fsck(fs->store(), DefaultNameHasher(), &report));
  std::cout << "fsck: " << (report.ok() ? "consistent" : "PROBLEMS FOUND") << '\n';
  for (const std::string& p : report.problems) std::cout << "problem: " << p << '\n';
  return Status::OK();
}

// ---- Dispatch -------------------------------------------------------------------------------

// One subcommand and the arguments it accepts.
struct Command {
  const char* name;
  Status (*run)(const Args&, int* exit_code);
  size_t min_operands;  // positional arguments
  size_t max_operands;
  const char* flags;  // single-letter flags it accepts
  bool dump_options;  // accepts --column and --key
};

constexpr Command kCommands[] = {
    {"fsck", RunFsck, 0, 0, "", false},
    {"dump", RunDump, 0, 0, "", true},
    {"ls", RunLs, 0, 1, "R", false},
    {"stat", RunStat, 1, 1, "", false},
    {"cat", RunCat, 1, 1, "", false},
    {"put", RunPut, 2, 2, "", false},
    {"mkdir", RunMkdir, 1, SIZE_MAX, "p", false},
    {"rm", RunRm, 1, SIZE_MAX, "r", false},
    {"import", RunImport, 2, 2, "", false},
    {"statfs", RunStatFs, 0, 0, "", false},
    {"demo", RunDemo, 0, 0, "", false},
    {"cache", RunCache, 1, 2, "", false},
    {"backup", RunBackup, 1, 1, "", false},
};

// Parses the arguments after the command name.
Status ParseArgs(const Command& cmd, int argc, char** argv, Args* args) {
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view opt, std::string* out) -> Status {
      if (a.size() > opt.size() && a[opt.size()] == '=') {
        *out = a.substr(opt.size() + 1);
      } else if (i + 1 < argc) {
        *out = argv[++i];
      } else {
        return UsageError(std::string(opt) + " needs a value");
      }
      return Status::OK();
    };
    auto is_opt = [&](std::string_view opt) {
      return a == opt || (a.starts_with(opt) && a.size() > opt.size() && a[opt.size()] == '=');
    };
    if (options_done || a == "-" || !a.starts_with("-")) {
      args->operands.emplace_back(a);
    } else if (a == "--") {
      options_done = true;
    } else if (is_opt("--db")) {
      KVFS_RETURN_IF_ERROR(value("--db", &args->db));
    } else if (is_opt("--backend")) {
      KVFS_RETURN_IF_ERROR(value("--backend", &args->backend));
    } else if (is_opt("--kv-options")) {
      KVFS_RETURN_IF_ERROR(value("--kv-options", &args->kv_options));
    } else if (cmd.dump_options && is_opt("--column")) {
      KVFS_RETURN_IF_ERROR(value("--column", &args->column.emplace()));
    } else if (cmd.dump_options && is_opt("--key")) {
      KVFS_RETURN_IF_ERROR(value("--key", &args->key.emplace()));
    } else if (!a.starts_with("--") &&
               a.find_first_not_of(cmd.flags, 1) == std::string_view::npos) {
      for (char f : a.substr(1)) args->flags.insert(f);
    } else {
      return UsageError("unknown option '" + std::string(a) + "' for " + cmd.name);
    }
  }
  if (args->operands.size() < cmd.min_operands) {
    return UsageError(std::string(cmd.name) + ": missing arguments");
  }
  if (args->operands.size() > cmd.max_operands) {
    return UsageError(std::string(cmd.name) + ": too many arguments");
  }
  if (args->db.empty()) return UsageError(std::string(cmd.name) + ": --db PATH is required");
  return Status::OK();
}

// Dispatches to the command; returns the exit status.
int Main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitError;
  }
  std::string_view name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    std::cout << kUsage;
    return kExitOk;
  }
  for (const Command& cmd : kCommands) {
    if (name != cmd.name) continue;
    Args args;
    int exit_code = kExitOk;
    Status s = ParseArgs(cmd, argc - 2, argv + 2, &args);
    if (s.ok()) s = cmd.run(args, &exit_code);
    if (!s.ok()) {
      std::cout.flush();
      std::cerr << "kvfs " << cmd.name << ": " << s.ToString() << '\n';
      return kExitError;
    }
    return exit_code;
  }
  std::cerr << "kvfs: unknown command '" << name << "'\n\n" << kUsage;
  return kExitError;
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) { return kvfs::Main(argc, argv); }
