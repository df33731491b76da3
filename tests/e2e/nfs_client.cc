#include "tests/e2e/nfs_client.h"

#include <fcntl.h>
#include <nfsc/libnfs-raw-nfs4.h>
#include <nfsc/libnfs-raw.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <utility>

namespace kvfs::e2e {

const char* NfsVersionName(NfsVersion version) {
  return version == NfsVersion::kV3 ? "NFSv3" : "NFSv4";
}

// ----- NfsFile -----

NfsFile::NfsFile(NfsFile&& other) noexcept
    : nfs_(std::exchange(other.nfs_, nullptr)),
      fh_(std::exchange(other.fh_, nullptr)),
      version_(other.version_) {}

NfsFile& NfsFile::operator=(NfsFile&& other) noexcept {
  if (this != &other) {
    Close();
    nfs_ = std::exchange(other.nfs_, nullptr);
    fh_ = std::exchange(other.fh_, nullptr);
    version_ = other.version_;
  }
  return *this;
}

size_t NfsFile::WriteChunk(size_t n) const {
  // libnfs splits large v3 writes itself; v4 ones must be split here.
  return version_ == NfsVersion::kV4 ? std::min(n, kNfsV4WriteChunk) : n;
}

NfsFile::~NfsFile() { Close(); }

int64_t NfsFile::Read(void* buf, size_t n) {
  if (fh_ == nullptr) return -EBADF;
  return nfs_read(nfs_, fh_, n, buf);
}

int64_t NfsFile::Pread(void* buf, size_t n, uint64_t offset) {
  if (fh_ == nullptr) return -EBADF;
  return nfs_pread(nfs_, fh_, offset, n, buf);
}

int64_t NfsFile::Write(const void* buf, size_t n) {
  if (fh_ == nullptr) return -EBADF;
  const char* p = static_cast<const char*>(buf);
  size_t done = 0;
  do {
    const size_t len = WriteChunk(n - done);
    int rc = nfs_write(nfs_, fh_, len, p + done);
    if (rc < 0) return done > 0 ? static_cast<int64_t>(done) : rc;
    done += static_cast<size_t>(rc);
    if (static_cast<size_t>(rc) < len) break;
  } while (done < n);
  return static_cast<int64_t>(done);
}

int64_t NfsFile::Pwrite(const void* buf, size_t n, uint64_t offset) {
  if (fh_ == nullptr) return -EBADF;
  const char* p = static_cast<const char*>(buf);
  size_t done = 0;
  do {
    const size_t len = WriteChunk(n - done);
    int rc = nfs_pwrite(nfs_, fh_, offset + done, len, p + done);
    if (rc < 0) return done > 0 ? static_cast<int64_t>(done) : rc;
    done += static_cast<size_t>(rc);
    if (static_cast<size_t>(rc) < len) break;
  } while (done < n);
  return static_cast<int64_t>(done);
}

int64_t NfsFile::Lseek(int64_t offset, int whence) {
  if (fh_ == nullptr) return -EBADF;
  uint64_t current = 0;
  int rc = nfs_lseek(nfs_, fh_, offset, whence, &current);
  return rc < 0 ? rc : static_cast<int64_t>(current);
}

int NfsFile::Fstat(NfsStat* st) {
  if (fh_ == nullptr) return -EBADF;
  return nfs_fstat64(nfs_, fh_, st);
}

int NfsFile::Ftruncate(uint64_t length) {
  if (fh_ == nullptr) return -EBADF;
  return nfs_ftruncate(nfs_, fh_, length);
}

int NfsFile::Fsync() {
  if (fh_ == nullptr) return -EBADF;
  return nfs_fsync(nfs_, fh_);
}

int NfsFile::Fchmod(int mode) {
  if (fh_ == nullptr) return -EBADF;
  return nfs_fchmod(nfs_, fh_, mode);
}

int NfsFile::Fchown(int uid, int gid) {
  if (fh_ == nullptr) return -EBADF;
  if (version_ == NfsVersion::kV4 && (uid == -1 || gid == -1)) {
    NfsStat st{};
    int rc = nfs_fstat64(nfs_, fh_, &st);
    if (rc < 0) return rc;
    if (uid == -1) uid = static_cast<int>(st.nfs_uid);
    if (gid == -1) gid = static_cast<int>(st.nfs_gid);
  }
  return nfs_fchown(nfs_, fh_, uid, gid);
}

int NfsFile::Close() {
  if (fh_ == nullptr) return 0;
  int rc = nfs_close(nfs_, fh_);
  fh_ = nullptr;
  nfs_ = nullptr;
  return rc;
}

// ----- NfsClient -----

NfsClient::NfsClient(NfsVersion version, NfsClientOptions options)
    : version_(version), options_(std::move(options)), nfs_(nfs_init_context()) {
  if (nfs_ == nullptr) return;
  nfs_set_timeout(nfs_, options_.timeout_ms);
  nfs_set_autoreconnect(nfs_, options_.autoreconnect);
  nfs_set_dircache(nfs_, options_.dircache ? 1 : 0);
  nfs_set_uid(nfs_, options_.uid);
  nfs_set_gid(nfs_, options_.gid);
  // libnfs gives every NFSv4 client of a process the same client name, so a
  // second client would expire the first one's state: name each one.
  static std::atomic<int> counter{0};
  std::string name = "kvfs-e2e-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  nfs4_set_client_name(nfs_, name.c_str());
}

NfsClient::~NfsClient() {
  if (nfs_ == nullptr) return;
  // UMNT for NFSv3 so the server's mount list stays clean; a no-op for v4.
  if (mounted_ && version_ == NfsVersion::kV3) nfs_umount(nfs_);
  nfs_destroy_context(nfs_);
}

int NfsClient::Mount(const std::string& export_path) {
  if (nfs_ == nullptr) return -ENOMEM;
  if (mounted_) return -EBUSY;
  // libnfs's NFS_V3/NFS_V4 (3 and 4) live in its raw protocol headers.
  int rc = nfs_set_version(nfs_, static_cast<int>(version_));
  if (rc < 0) return rc;
  rc = nfs_mount(nfs_, options_.server.c_str(), export_path.c_str());
  if (rc == 0) mounted_ = true;
  return rc;
}

std::string NfsClient::LastError() const {
  if (nfs_ == nullptr) return "nfs_init_context failed";
  if (!raw_error_.empty()) return raw_error_;
  const char* err = nfs_get_error(nfs_);
  return err == nullptr ? std::string() : std::string(err);
}

namespace {

// libnfs's file handle (struct nfs_fh of libnfs-private.h, which its public
// headers only declare; nfs_get_fh() returns it).
struct LibnfsFh {
  int len;
  char* val;
};

// What a raw COMPOUND { PUTFH, READ } returned.
struct RawRead {
  bool done = false;
  int rpc_status = 0;
  nfsstat4 status = NFS4_OK;
  std::string data;
};

void OnRawRead(struct rpc_context*, int status, void* data, void* private_data) {
  auto* r = static_cast<RawRead*>(private_data);
  r->done = true;
  r->rpc_status = status;
  if (status != RPC_STATUS_SUCCESS) return;
  const auto* res = static_cast<COMPOUND4res*>(data);
  r->status = res->status;
  for (u_int i = 0; i < res->resarray.resarray_len; ++i) {
    const nfs_resop4& op = res->resarray.resarray_val[i];
    if (op.resop == OP_READ && op.nfs_resop4_u.opread.status == NFS4_OK) {
      const READ4resok& ok = op.nfs_resop4_u.opread.READ4res_u.resok4;
      r->data.assign(ok.data.data_val, ok.data.data_len);
    }
  }
}

int Nfs4Errno(nfsstat4 status) {
  switch (status) {
    case NFS4_OK:
      return 0;
    case NFS4ERR_STALE:
    case NFS4ERR_FHEXPIRED:
      return -ESTALE;
    case NFS4ERR_BADHANDLE:
      return -EBADF;
    case NFS4ERR_NOENT:
      return -ENOENT;
    case NFS4ERR_ACCESS:
    case NFS4ERR_PERM:
      return -EACCES;
    case NFS4ERR_ISDIR:
      return -EISDIR;
    default:
      return -EIO;
  }
}

}  // namespace

std::string NfsFile::Handle() const {
  if (fh_ == nullptr) return "";
  const auto* fh = reinterpret_cast<const LibnfsFh*>(nfs_get_fh(fh_));
  return std::string(fh->val, static_cast<size_t>(fh->len));
}

int NfsClient::ReadByHandle(const std::string& handle, uint64_t offset, uint32_t count,
                            std::string* data) {
  raw_error_.clear();
  if (!mounted_) return -ENOTCONN;
  if (version_ != NfsVersion::kV4) return -EPROTONOSUPPORT;
  nfs_argop4 ops[2] = {};
  ops[0].argop = OP_PUTFH;
  ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len = static_cast<u_int>(handle.size());
  ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val = const_cast<char*>(handle.data());
  ops[1].argop = OP_READ;
  ops[1].nfs_argop4_u.opread.offset = offset;
  ops[1].nfs_argop4_u.opread.count = count;  // the anonymous stateid: all zeros
  COMPOUND4args args = {};
  args.argarray.argarray_len = 2;
  args.argarray.argarray_val = ops;
  struct rpc_context* rpc = nfs_get_rpc_context(nfs_);
  RawRead result;
  if (rpc_nfs4_compound_async(rpc, OnRawRead, &args, &result) != 0) {
    raw_error_ = "cannot send COMPOUND: " + std::string(rpc_get_error(rpc));
    return -EIO;
  }
  while (!result.done) {
    pollfd pfd{rpc_get_fd(rpc), static_cast<short>(rpc_which_events(rpc)), 0};
    if (poll(&pfd, 1, 100) < 0 && errno != EINTR) return -errno;
    if (rpc_service(rpc, pfd.revents) < 0) {
      raw_error_ = "rpc_service: " + std::string(rpc_get_error(rpc));
      return -EIO;
    }
  }
  if (result.rpc_status != RPC_STATUS_SUCCESS) {
    raw_error_ = "COMPOUND failed: " + std::string(rpc_get_error(rpc));
    return -EIO;
  }
  if (result.status != NFS4_OK) {
    raw_error_ = "COMPOUND { PUTFH, READ }: NFS4 status " + std::to_string(result.status);
    return Nfs4Errno(result.status);
  }
  *data = std::move(result.data);
  return 0;
}

void NfsClient::SetCredentials(int uid, int gid) {
  options_.uid = uid;
  options_.gid = gid;
  if (nfs_ == nullptr) return;
  nfs_set_uid(nfs_, uid);
  nfs_set_gid(nfs_, gid);
}

uint64_t NfsClient::ReadMax() const { return nfs_ == nullptr ? 0 : nfs_get_readmax(nfs_); }

uint64_t NfsClient::WriteMax() const { return nfs_ == nullptr ? 0 : nfs_get_writemax(nfs_); }

int NfsClient::Mkdir(const std::string& path, int mode) {
  if (!mounted_) return -ENOTCONN;
  return nfs_mkdir2(nfs_, path.c_str(), mode);
}

int NfsClient::CheckTypeForRemove(const std::string& path, bool want_dir) {
  if (version_ != NfsVersion::kV4) return 0;
  NfsStat st{};
  int rc = nfs_lstat64(nfs_, path.c_str(), &st);
  if (rc < 0) return rc;
  const bool is_dir = S_ISDIR(st.nfs_mode);
  if (want_dir && !is_dir) return -ENOTDIR;
  if (!want_dir && is_dir) return -EISDIR;
  return 0;
}

int NfsClient::Rmdir(const std::string& path) {
  if (!mounted_) return -ENOTCONN;
  int rc = CheckTypeForRemove(path, /*want_dir=*/true);
  return rc < 0 ? rc : nfs_rmdir(nfs_, path.c_str());
}

int NfsClient::Unlink(const std::string& path) {
  if (!mounted_) return -ENOTCONN;
  int rc = CheckTypeForRemove(path, /*want_dir=*/false);
  return rc < 0 ? rc : nfs_unlink(nfs_, path.c_str());
}

int NfsClient::Rename(const std::string& from, const std::string& to) {
  if (!mounted_) return -ENOTCONN;
  return nfs_rename(nfs_, from.c_str(), to.c_str());
}

int NfsClient::Link(const std::string& old_path, const std::string& new_path) {
  if (!mounted_) return -ENOTCONN;
  return nfs_link(nfs_, old_path.c_str(), new_path.c_str());
}

int NfsClient::Symlink(const std::string& target, const std::string& link_path) {
  if (!mounted_) return -ENOTCONN;
  return nfs_symlink(nfs_, target.c_str(), link_path.c_str());
}

int NfsClient::Readlink(const std::string& path, std::string* target) {
  if (!mounted_) return -ENOTCONN;
  char* buf = nullptr;
  int rc = nfs_readlink2(nfs_, path.c_str(), &buf);
  if (rc == 0 && buf != nullptr) target->assign(buf);
  free(buf);
  return rc;
}

int NfsClient::Stat(const std::string& path, NfsStat* st) {
  if (!mounted_) return -ENOTCONN;
  return nfs_stat64(nfs_, path.c_str(), st);
}

int NfsClient::Lstat(const std::string& path, NfsStat* st) {
  if (!mounted_) return -ENOTCONN;
  return nfs_lstat64(nfs_, path.c_str(), st);
}

int NfsClient::Truncate(const std::string& path, uint64_t length) {
  if (!mounted_) return -ENOTCONN;
  return nfs_truncate(nfs_, path.c_str(), length);
}

int NfsClient::Chmod(const std::string& path, int mode) {
  if (!mounted_) return -ENOTCONN;
  return nfs_chmod(nfs_, path.c_str(), mode);
}

int NfsClient::Chown(const std::string& path, int uid, int gid) {
  if (!mounted_) return -ENOTCONN;
  if (version_ == NfsVersion::kV4 && (uid == -1 || gid == -1)) {
    NfsStat st{};
    int rc = nfs_stat64(nfs_, path.c_str(), &st);
    if (rc < 0) return rc;
    if (uid == -1) uid = static_cast<int>(st.nfs_uid);
    if (gid == -1) gid = static_cast<int>(st.nfs_gid);
  }
  return nfs_chown(nfs_, path.c_str(), uid, gid);
}

int NfsClient::Utimes(const std::string& path, struct timeval* times) {
  if (!mounted_) return -ENOTCONN;
  struct timeval now[2];
  if (times == nullptr) {
    gettimeofday(&now[0], nullptr);
    now[1] = now[0];
    times = now;
  }
  return nfs_utimes(nfs_, path.c_str(), times);
}

int NfsClient::Access(const std::string& path, int mode) {
  if (!mounted_) return -ENOTCONN;
  return nfs_access(nfs_, path.c_str(), mode);
}

int NfsClient::StatVfs(const std::string& path, NfsStatVfs* st) {
  if (!mounted_) return -ENOTCONN;
  return nfs_statvfs64(nfs_, path.c_str(), st);
}

int NfsClient::ReadDir(const std::string& path, std::vector<NfsDirEntry>* entries) {
  if (!mounted_) return -ENOTCONN;
  entries->clear();
  struct nfsdir* dir = nullptr;
  int rc = nfs_opendir(nfs_, path.c_str(), &dir);
  if (rc < 0) return rc;
  while (struct nfsdirent* ent = nfs_readdir(nfs_, dir)) {
    std::string_view name(ent->name);
    if (name == "." || name == "..") continue;
    NfsDirEntry e;
    e.name = ent->name;
    e.inode = version_ == NfsVersion::kV4 ? 0 : ent->inode;
    e.mode = ent->mode;
    e.size = ent->size;
    e.nlink = ent->nlink;
    entries->push_back(std::move(e));
  }
  nfs_closedir(nfs_, dir);
  return 0;
}

int NfsClient::ListDir(const std::string& path, std::vector<std::string>* names) {
  names->clear();
  std::vector<NfsDirEntry> entries;
  int rc = ReadDir(path, &entries);
  if (rc < 0) return rc;
  for (auto& e : entries) names->push_back(std::move(e.name));
  std::sort(names->begin(), names->end());
  return 0;
}

int NfsClient::Opened(struct nfsfh* fh, bool created, int mode, NfsFile* file) {
  NfsFile opened(nfs_, fh, version_);
  if (created && version_ == NfsVersion::kV4 && (mode & 07777) != 0600) {
    int rc = opened.Fchmod(mode & 07777);
    if (rc < 0) return rc;
  }
  *file = std::move(opened);
  return 0;
}

int NfsClient::Open(const std::string& path, int flags, NfsFile* file, int mode) {
  if (!mounted_) return -ENOTCONN;
  struct nfsfh* fh = nullptr;
  int rc = nfs_open2(nfs_, path.c_str(), flags, mode, &fh);
  bool created = (flags & O_CREAT) != 0;
  if (rc == -EEXIST && version_ == NfsVersion::kV4 && (flags & O_CREAT) && !(flags & O_EXCL)) {
    // libnfs 4.0 always creates exclusively over v4.
    created = false;
    rc = nfs_open2(nfs_, path.c_str(), flags & ~O_CREAT, mode, &fh);
  }
  if (rc < 0) return rc;
  return Opened(fh, created, mode, file);
}

int NfsClient::Create(const std::string& path, int flags, int mode, NfsFile* file) {
  if (!mounted_) return -ENOTCONN;
  if (!(flags & O_EXCL)) return Open(path, flags | O_CREAT, file, mode);
  struct nfsfh* fh = nullptr;
  int rc = nfs_create(nfs_, path.c_str(), flags | O_CREAT, mode, &fh);
  if (rc < 0) return rc;
  return Opened(fh, /*created=*/true, mode, file);
}

int NfsClient::ReadFile(const std::string& path, std::string* data) {
  data->clear();
  NfsFile file;
  int rc = Open(path, O_RDONLY, &file);
  if (rc < 0) return rc;
  // libnfs splits large reads into READs the server accepts (v4 too).
  const size_t chunk = std::max<uint64_t>(ReadMax(), 1 << 20);
  std::string buf(chunk, '\0');
  uint64_t offset = 0;
  while (true) {
    int64_t n = file.Pread(buf.data(), buf.size(), offset);
    if (n < 0) return static_cast<int>(n);
    if (n == 0) break;
    data->append(buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return file.Close();
}

int NfsClient::WriteFile(const std::string& path, std::string_view data, int mode) {
  NfsFile file;
  int rc = Open(path, O_WRONLY | O_CREAT | O_TRUNC, &file, mode);
  if (rc < 0) return rc;
  uint64_t offset = 0;
  while (offset < data.size()) {
    const size_t n = data.size() - static_cast<size_t>(offset);
    int64_t written = file.Pwrite(data.data() + offset, n, offset);
    if (written < 0) return static_cast<int>(written);
    if (written == 0) return -EIO;
    offset += static_cast<uint64_t>(written);
  }
  return file.Close();
}

}  // namespace kvfs::e2e
