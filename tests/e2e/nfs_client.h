// NfsClient: a small RAII wrapper over libnfs's synchronous API, for
// end-to-end tests that talk to a real NFS server over the wire.
//
// The machine's kernel has no NFS client, so tests drive the server with
// libnfs (4.0 on Debian 12) over NFSv3 or NFSv4.0. Every operation returns
// errno style: 0 (or a byte count) on success, a negative errno on failure,
// exactly as libnfs reports it, so a test can write
//   EXPECT_EQ(client.Mkdir("/d"), -EEXIST);
// LastError() gives libnfs's text for the most recent failure.
//
// Paths are relative to the mounted export and start with '/'.
//
// libnfs 4.0's NFSv4 client is incomplete; where it deviates from what a
// POSIX client (the Linux kernel's) would do, this wrapper emulates the POSIX
// behaviour on the client side, so the same test runs over both versions:
//   - open(O_CREAT) of an existing file fails with EEXIST over v4: retried
//     without O_CREAT (unless O_EXCL);
//   - files created over v4 get mode 0600 whatever is asked: the requested
//     mode is set with a SETATTR right after the create;
//   - WRITE compounds over ~3.9 KiB fail to encode over v4: writes are split
//     into kNfsV4WriteChunk pieces (several RPCs, not one);
//   - chown(-1) stores uid/gid 4294967295 over v4: -1 is replaced by the
//     current value;
//   - utimes(NULL) crashes libnfs over v4 and sets time 0 over v3: the
//     client's current time is sent instead;
//   - rmdir/unlink map to NFSv4 REMOVE, which removes any type: the type is
//     checked first (ENOTDIR / EISDIR as Linux returns them);
//   - readdir over v4 returns garbage inode numbers: reported as 0.
// Everything else goes to libnfs unchanged. See tests/e2e/README.md for the
// full list of v4 findings.
//
// Not thread-safe: one NfsClient (and its NfsFiles) per thread.
#pragma once

#include <nfsc/libnfs.h>
#include <sys/time.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvfs::e2e {

// The NFS protocol version a client speaks.
enum class NfsVersion { kV3 = 3, kV4 = 4 };

// Largest write libnfs 4.0 sends in one NFSv4 WRITE here (its COMPOUND
// arguments must encode into ~4 KiB; 3904 bytes of data is the measured
// limit with Ganesha's handles).
inline constexpr size_t kNfsV4WriteChunk = 3072;

// "NFSv3" or "NFSv4" (for test names and messages).
const char* NfsVersionName(NfsVersion version);

// Attributes of a file, as libnfs returns them (nfs_mode holds S_IFMT bits
// and permissions; times are seconds + nanoseconds).
using NfsStat = struct nfs_stat_64;

// File system statistics, as libnfs returns them.
using NfsStatVfs = struct nfs_statvfs_64;

// One directory entry of a full listing.
struct NfsDirEntry {
  std::string name;
  // The file id (0 over NFSv4, where libnfs 4.0 reports garbage).
  uint64_t inode = 0;
  // S_IFMT bits plus permissions (from READDIRPLUS/READDIR attributes).
  uint32_t mode = 0;
  uint64_t size = 0;
  uint32_t nlink = 0;
};

// Connection settings of an NfsClient.
struct NfsClientOptions {
  // Server address. Tests only ever use loopback.
  std::string server = "127.0.0.1";
  // RPC timeout in milliseconds (libnfs wants whole seconds); -1 for none.
  // A test against a stopped server fails after this instead of hanging.
  int timeout_ms = 10000;
  // Reconnect attempts after a broken connection (libnfs's autoreconnect:
  // -1 forever, 0 never). Bounded so a dead server cannot hang a test.
  int autoreconnect = 2;
  // Credentials sent with every call (AUTH_SYS).
  int uid = 0;
  int gid = 0;
  // libnfs caches directory contents by default, which would hide server
  // behaviour from tests; off unless asked for.
  bool dircache = false;
};

class NfsClient;

// An open file of an NfsClient. Move-only; closes the file on destruction
// (ignoring errors; call Close() to see them). Must not outlive its client.
class NfsFile {
 public:
  // A closed file.
  NfsFile() = default;
  NfsFile(NfsFile&& other) noexcept;
  NfsFile& operator=(NfsFile&& other) noexcept;
  NfsFile(const NfsFile&) = delete;
  NfsFile& operator=(const NfsFile&) = delete;
  ~NfsFile();

  // True while the file is open.
  bool is_open() const { return fh_ != nullptr; }

  // The protocol version of the client that opened the file.
  NfsVersion version() const { return version_; }
  // The file's NFS file handle, as the server sent it ("" if not open):
  // what a client presents to another server of a cluster
  // (NfsClient::ReadByHandle).
  std::string Handle() const;

  // Reads up to n bytes at the current offset; returns bytes read or -errno.
  int64_t Read(void* buf, size_t n);
  // Reads up to n bytes at offset; returns bytes read or -errno.
  int64_t Pread(void* buf, size_t n, uint64_t offset);
  // Writes n bytes at the current offset; returns bytes written (short if a
  // later v4 piece failed) or -errno.
  int64_t Write(const void* buf, size_t n);
  // Writes n bytes at offset; returns bytes written (short if a later v4
  // piece failed) or -errno.
  int64_t Pwrite(const void* buf, size_t n, uint64_t offset);
  // Convenience overloads for strings.
  int64_t Write(std::string_view data) { return Write(data.data(), data.size()); }
  int64_t Pwrite(std::string_view data, uint64_t offset) {
    return Pwrite(data.data(), data.size(), offset);
  }
  // Moves the current offset (whence: SEEK_SET/CUR/END); returns the new
  // offset or -errno.
  int64_t Lseek(int64_t offset, int whence);
  // Attributes of the open file; 0 or -errno.
  int Fstat(NfsStat* st);
  // Sets the file's size; 0 or -errno.
  int Ftruncate(uint64_t length);
  // Commits written data to stable storage (COMMIT); 0 or -errno.
  int Fsync();
  // Changes permission bits of the open file; 0 or -errno.
  int Fchmod(int mode);
  // Changes owner of the open file (-1 keeps one unchanged); 0 or -errno.
  int Fchown(int uid, int gid);
  // Closes the file; 0 or -errno. The file is closed even on error.
  int Close();

 private:
  friend class NfsClient;
  NfsFile(struct nfs_context* nfs, struct nfsfh* fh, NfsVersion version)
      : nfs_(nfs), fh_(fh), version_(version) {}

  // The largest piece one libnfs write call may carry.
  size_t WriteChunk(size_t n) const;

  struct nfs_context* nfs_ = nullptr;
  struct nfsfh* fh_ = nullptr;
  NfsVersion version_ = NfsVersion::kV3;
};

// A connection to one export of an NFS server. Owns its libnfs context;
// unmounts (NFSv3) and frees it on destruction.
class NfsClient {
 public:
  // Creates an unmounted client speaking `version`.
  explicit NfsClient(NfsVersion version, NfsClientOptions options = {});
  NfsClient(const NfsClient&) = delete;
  NfsClient& operator=(const NfsClient&) = delete;
  ~NfsClient();

  NfsVersion version() const { return version_; }

  // Mounts `export_path`: the export's Path for NFSv3 (MOUNT protocol via
  // rpcbind), its Pseudo path for NFSv4. 0 or -errno. A client mounts once.
  int Mount(const std::string& export_path);
  // True after a successful Mount().
  bool mounted() const { return mounted_; }
  // libnfs's description of the last failure ("" if none).
  std::string LastError() const;
  // Changes the credentials sent with following calls.
  void SetCredentials(int uid, int gid);
  // Largest READ/WRITE the server accepts (after Mount(); 0 over NFSv4,
  // where libnfs 4.0 does not fetch them).
  uint64_t ReadMax() const;
  uint64_t WriteMax() const;
  // The underlying libnfs context, for calls this class does not wrap.
  struct nfs_context* context() {
    return nfs_;
  }

  // NFSv4 only: reads up to `count` bytes at `offset` of the file whose
  // handle is `handle` (bytes of NfsFile::Handle(), maybe from another
  // server) with one raw COMPOUND { PUTFH, READ } and the anonymous stateid,
  // as a client that moved to this server would. 0 or -errno (a stale
  // handle is -ESTALE; LastError() then names the NFS status).
  int ReadByHandle(const std::string& handle, uint64_t offset, uint32_t count, std::string* data);

  // --- Namespace operations; each returns 0 or -errno (-ENOTCONN before a
  // successful Mount()). ---

  // Creates a directory with the given mode.
  int Mkdir(const std::string& path, int mode = 0755);
  // Removes an empty directory (-ENOTDIR for another type).
  int Rmdir(const std::string& path);
  // Removes a non-directory (-EISDIR for a directory).
  int Unlink(const std::string& path);
  // Renames `from` to `to` (replacing `to` as POSIX rename does).
  int Rename(const std::string& from, const std::string& to);
  // Creates a hard link `new_path` to the existing `old_path`.
  int Link(const std::string& old_path, const std::string& new_path);
  // Creates a symbolic link at `link_path` whose content is `target`.
  int Symlink(const std::string& target, const std::string& link_path);
  // Reads a symbolic link's content into *target.
  int Readlink(const std::string& path, std::string* target);
  // Attributes of path, following a final symlink.
  int Stat(const std::string& path, NfsStat* st);
  // Attributes of path itself (not following a final symlink).
  int Lstat(const std::string& path, NfsStat* st);
  // Sets a file's size.
  int Truncate(const std::string& path, uint64_t length);
  // Changes permission bits.
  int Chmod(const std::string& path, int mode);
  // Changes owner and group (-1 keeps one unchanged, as chown(2)).
  int Chown(const std::string& path, int uid, int gid);
  // Sets access and modification times (times[0] atime, times[1] mtime);
  // nullptr sets both to the client's current time.
  int Utimes(const std::string& path, struct timeval* times);
  // Checks access bits (R_OK/W_OK/X_OK or F_OK) with the client's credentials.
  int Access(const std::string& path, int mode);
  // File system statistics of the export containing path.
  int StatVfs(const std::string& path, NfsStatVfs* st);
  // Full listing of a directory, without "." and "..", in server order.
  int ReadDir(const std::string& path, std::vector<NfsDirEntry>* entries);
  // Names of a directory's entries (without "." and ".."), sorted.
  int ListDir(const std::string& path, std::vector<std::string>* names);

  // --- Files; each returns 0 or -errno and fills *file on success. ---

  // Opens an existing file (or creates it with O_CREAT) with open(2) flags
  // (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_SYNC...).
  int Open(const std::string& path, int flags, NfsFile* file, int mode = 0644);
  // Creates a file (O_CREAT is implied; add O_EXCL to fail on an existing
  // file) and opens it.
  int Create(const std::string& path, int flags, int mode, NfsFile* file);

  // --- Whole-file helpers. ---

  // Reads the whole content of path into *data.
  int ReadFile(const std::string& path, std::string* data);
  // Creates or truncates path (new files get `mode`) and writes data into
  // it, then closes it.
  int WriteFile(const std::string& path, std::string_view data, int mode = 0644);

 private:
  // Wraps a successfully opened handle; over v4, applies `mode` to a file
  // that was just created.
  int Opened(struct nfsfh* fh, bool created, int mode, NfsFile* file);
  // Over v4 only: -ENOTDIR/-EISDIR if path's type does not fit (want_dir),
  // else 0 (or a lookup error).
  int CheckTypeForRemove(const std::string& path, bool want_dir);

  NfsVersion version_;
  NfsClientOptions options_;
  struct nfs_context* nfs_ = nullptr;
  bool mounted_ = false;
  std::string raw_error_;  // of the last raw call (ReadByHandle)
};

}  // namespace kvfs::e2e
