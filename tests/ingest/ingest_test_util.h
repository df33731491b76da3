// Helpers for the ingest tests: writing tarballs with libarchive, reading
// tarballs and KVFS trees into comparable manifests, and snapshots of a
// whole store.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/file_system.h"
#include "common/kv/kv_store.h"
#include "common/status.h"
#include "ingest/archive.h"
#include "ingest/persistent_store.h"
#include "tests/fs/test_util.h"

namespace kvfs::ingest_test {

// Tar dialects libarchive writes.
enum class TarFormat { kUstar, kPax, kGnu, kV7 };

// One member to write. Regular files carry `data` (or, for sparse members,
// `size` with `data` empty and `sparse` pieces). Times default to a fixed
// point in 2023 with nanoseconds.
struct Spec {
  std::string path;
  ingest::MemberType type = ingest::MemberType::kRegular;
  uint32_t mode = 0644;
  uint32_t uid = 1000;
  uint32_t gid = 100;
  Timespec mtime{1690000000, 123456789};
  std::string data;         // regular file contents
  std::string link_target;  // symlink target / hard link target path
  uint64_t rdev = 0;
};

// Shorthands.
Spec File(std::string path, std::string data, uint32_t mode = 0644);
Spec Dir(std::string path, uint32_t mode = 0755);
Spec Symlink(std::string path, std::string target);
Spec HardLink(std::string path, std::string target);

// Writes `members` as a tarball at `path`. Fails the test on error.
void WriteTarball(const std::string& path, const std::vector<Spec>& members,
                  TarFormat format = TarFormat::kPax,
                  ingest::Compression compression = ingest::Compression::kNone);

// Debian's linux-source-6.1 tarball (ci/install-deps.sh installs it): the
// real tree nobody here wrote that the round-trip and crash tests use.
inline constexpr char kLinuxSourceTarball[] = "/usr/src/linux-source-6.1.tar.xz";

// Copies the first `n` members of tarball `from` (any format and
// compression libarchive reads) into a new uncompressed pax tarball `to`.
Status CopyTarballPrefix(const std::string& from, const std::string& to, int n);

// A tree in comparable form, keyed by path relative to the tree's top (""
// is the top itself).
struct ManifestEntry {
  FileType type = FileType::kRegular;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // regular files
  Timespec mtime;
  std::string link_target;  // symlinks
  uint64_t content_hash = 0;
  uint64_t rdev = 0;
  // Regular files: the smallest path among the names of the same file.
  std::string link_group;
};
using Manifest = std::map<std::string, ManifestEntry>;

struct ManifestOptions {
  // Compare nanoseconds of mtimes (formats that keep them).
  bool mtime_nsec = true;
};

// Reads the tarball at `path` into *out, applying the ingest path rule for
// tree `top` (members "top/x" and "x" are both "x"). Directories that are
// only implied by deeper members are left out.
Status ReadTarballManifest(const std::string& path, std::string_view top, Manifest* out);
// Reads KVFS top-level directory `top` into *out.
Status ReadTreeManifest(FileSystem* fs, std::string_view top, Manifest* out);
// Reads local directory `dir` (any mounted file system, not following
// symlinks) into *out; hard links are names with the same device and inode.
Status ReadDirectoryManifest(const std::string& dir, Manifest* out);
// The differences between an expected and an actual manifest, one line
// each (at most ten, long paths shortened). Paths only in `actual` count only if `strict`: a
// tarball may leave directories implied.
std::vector<std::string> CompareManifests(const Manifest& expected, const Manifest& actual,
                                          const ManifestOptions& options, bool strict);

// Every key and value of every column.
using StoreDump = std::vector<std::map<std::string, std::string>>;
StoreDump DumpStore(KVStore* store);
// Keys of `store` (all columns) whose inode number lies in `range`.
uint64_t KeysInRange(KVStore* store, uint64_t range);

// Opens a FileSystem on a fresh memory store (`hasher` defaults to the
// production hash).
std::unique_ptr<FileSystem> NewMemoryFileSystem(const NameHasher& hasher = DefaultNameHasher());
// Opens (creating) a FileSystem on a RocksDB store at `path`.
Status OpenRocksFileSystem(const std::string& path, std::unique_ptr<FileSystem>* out,
                           const NameHasher& hasher = DefaultNameHasher());

// n pseudo-random bytes from `seed`.
std::string RandomBytes(size_t n, uint64_t seed);

// Runs shell command `command`; returns its exit status (-1 if it did not
// exit normally) and sets *output to what it printed (stdout and stderr).
int RunCommand(const std::string& command, std::string* output);

}  // namespace kvfs::ingest_test
