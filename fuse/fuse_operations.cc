#include "fuse/fuse_operations.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace kvfs::fusefs {

// The handlers of the operations table: each finds its FuseOperations in the
// request and replies exactly once.
struct FuseOperations::Request {
  static FuseOperations* Ops(fuse_req_t req) {
    return static_cast<FuseOperations*>(fuse_req_userdata(req));
  }

  // Runs f, which replies; an exception (out of memory) becomes an error
  // reply: none may unwind through libfuse's C frames.
  template <typename F>
  static void Guard(fuse_req_t req, F&& f) noexcept {
    try {
      f();
    } catch (const std::bad_alloc&) {
      LogNoThrow(req, "out of memory serving a request", "");
      fuse_reply_err(req, ENOMEM);
    } catch (const std::exception& e) {
      LogNoThrow(req, "unexpected exception: ", e.what());
      fuse_reply_err(req, EIO);
    } catch (...) {
      LogNoThrow(req, "unexpected exception", "");
      fuse_reply_err(req, EIO);
    }
  }

  static void LogNoThrow(fuse_req_t req, const char* what, const char* detail) noexcept {
    try {
      Ops(req)->options_.log(std::string(what) + detail);
    } catch (...) {
    }
  }

  // Replies the status' errno; store failures are logged with the core's
  // message (the kernel only passes the errno on).
  static void ReplyError(fuse_req_t req, const Status& s, std::string_view what) {
    int err = s.posix_errno() != 0 ? s.posix_errno() : EIO;
    if (err == EIO || err == ENOMEM || err == ENOSPC || err == EAGAIN || err == EDQUOT) {
      Ops(req)->options_.log(std::string(what) + ": " + s.ToString());
    }
    fuse_reply_err(req, err);
  }

  static struct stat ToStat(const FuseOperations* ops, const Attributes& a) {
    struct stat st;
    std::memset(&st, 0, sizeof(st));
    st.st_ino = ops->ToNode(a.ino);
    st.st_mode = FileTypeToMode(a.type) | (a.mode & 07777);
    st.st_nlink = a.nlink;
    st.st_uid = a.uid;
    st.st_gid = a.gid;
    st.st_rdev = a.rdev;
    st.st_size = static_cast<off_t>(a.size);
    st.st_blksize = ops->block_size_;
    st.st_blocks = static_cast<blkcnt_t>((a.space_used + 511) / 512);
    st.st_atim = {a.atime.sec, a.atime.nsec};
    st.st_mtim = {a.mtime.sec, a.mtime.nsec};
    st.st_ctim = {a.ctime.sec, a.ctime.nsec};
    return st;
  }

  static fuse_entry_param ToEntry(const FuseOperations* ops, const Attributes& a) {
    fuse_entry_param e;
    std::memset(&e, 0, sizeof(e));
    e.ino = ops->ToNode(a.ino);
    e.generation = 0;  // inode numbers are never reused
    e.attr = ToStat(ops, a);
    e.attr_timeout = ops->options_.settings.attr_timeout;
    e.entry_timeout = ops->options_.settings.entry_timeout;
    return e;
  }

  // Counts the lookup the reply gives the kernel, then replies; takes it back
  // if the kernel did not get the reply (the request was interrupted).
  static void ReplyEntry(fuse_req_t req, Ino parent, std::string_view name, const Attributes& a) {
    FuseOperations* ops = Ops(req);
    fuse_entry_param e = ToEntry(ops, a);
    ops->inodes_.Add(a.ino, parent == ops->options_.root ? name : std::string_view());
    if (fuse_reply_entry(req, &e) != 0) ops->inodes_.Forget(a.ino, 1);
  }

  // Ownership of a new object: the caller's uid and gid, or the parent's gid
  // (and, for a directory, its set-group-ID bit) if the parent has that bit.
  static Status NewObjectFor(fuse_req_t req, Ino parent, mode_t mode, bool dir, NewObject* out) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    out->mode = mode & 07777;
    out->uid = ctx->uid;
    out->gid = ctx->gid;
    Attributes p;
    KVFS_RETURN_IF_ERROR(Ops(req)->fs_->GetAttr(parent, &p));
    if (p.mode & S_ISGID) {
      out->gid = p.gid;
      if (dir) out->mode |= S_ISGID;
    }
    return Status::OK();
  }

  static void FileInfoForOpen(const FuseOperations* ops, InodeTable::Node* node,
                              const Attributes& a, fuse_file_info* fi) {
    const FuseSettings& f = ops->options_.settings;
    fi->direct_io = f.direct_io ? 1 : 0;
    // Closing a read-only descriptor has nothing to make durable: no flush
    // request (release still comes, after close returned).
    fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY ? 1 : 0;
    switch (f.cache) {
      case CacheMode::kNone:
        fi->keep_cache = 0;
        break;
      case CacheMode::kKernel:
        fi->keep_cache = 1;
        break;
      case CacheMode::kAuto:
        fi->keep_cache = node != nullptr && node->opened && node->open_mtime == a.mtime &&
                                 node->open_size == a.size
                             ? 1
                             : 0;
        break;
    }
    if (node != nullptr) {
      node->opened = true;
      node->open_mtime = a.mtime;
      node->open_size = a.size;
    }
  }

  // ---- The operations ---------------------------------------------------------------

  static void Init(void* userdata, fuse_conn_info* conn) {
    auto* ops = static_cast<FuseOperations*>(userdata);
    const FuseSettings& f = ops->options_.settings;
    // The kernel clears set-user-ID bits (on write, chown, truncate) and
    // truncates at open with a setattr, which the core makes durable.
    conn->want &= ~(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_ATOMIC_O_TRUNC);
    conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    if (f.readdirplus != ReaddirPlus::kNo && (conn->capable & FUSE_CAP_READDIRPLUS)) {
      conn->want |= FUSE_CAP_READDIRPLUS;
      if (f.readdirplus == ReaddirPlus::kAuto && (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)) {
        conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
      }
    }
    if (f.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
      conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    }
    // Symlink targets never change (a new target is a new inode).
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    // Nothing is kept per open directory: opendir answers ENOSYS once and
    // the kernel sends no more opendir and releasedir requests.
    ops->no_opendir_ = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
    conn->max_write = std::min(conn->max_write, f.max_write);
    // libfuse insists on the mount option's value.
    if (f.max_read != 0) conn->max_read = f.max_read;
    conn->time_gran = 1;
  }

  static void Destroy(void* userdata) {
    auto* ops = static_cast<FuseOperations*>(userdata);
    Status s = ops->fs_->Sync();
    if (!s.ok()) ops->options_.log("sync at unmount: " + s.ToString());
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(parent);
      Attributes a;
      Status s = ops->fs_->Lookup(dir, name, &a);
      if (s.IsNotFound() && ops->options_.settings.negative_timeout > 0) {
        fuse_entry_param e;
        std::memset(&e, 0, sizeof(e));
        e.entry_timeout = ops->options_.settings.negative_timeout;
        fuse_reply_entry(req, &e);
        return;
      }
      if (!s.ok()) return ReplyError(req, s, "lookup");
      ReplyEntry(req, dir, name, a);
    });
  }

  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    ForgetOne(Ops(req), ino, nlookup);
    fuse_reply_none(req);
  }

  static void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    FuseOperations* ops = Ops(req);
    for (size_t i = 0; i < count; ++i) ForgetOne(ops, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
  }

  static void ForgetOne(FuseOperations* ops, fuse_ino_t ino, uint64_t nlookup) noexcept {
    if (ino == 1) return;  // the root is never looked up, never forgotten
    if (!ops->inodes_.Forget(ops->ToCore(ino), nlookup)) {
      try {
        ops->options_.log("the kernel forgot " + std::to_string(nlookup) + " lookups of inode " +
                          std::to_string(ino) + ", more than it was given");
      } catch (...) {
      }
    }
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Attributes a;
      Status s = ops->fs_->GetAttr(ops->ToCore(ino), &a);
      if (!s.ok()) return ReplyError(req, s, "getattr");
      struct stat st = ToStat(ops, a);
      fuse_reply_attr(req, &st, ops->options_.settings.attr_timeout);
    });
  }

  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                      fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      SetAttrRequest r;
      if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
      if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
      if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
      if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
      if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        r.atime_now = true;
      } else if (to_set & FUSE_SET_ATTR_ATIME) {
        r.atime = Timespec{attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
      }
      if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        r.mtime_now = true;
      } else if (to_set & FUSE_SET_ATTR_MTIME) {
        r.mtime = Timespec{attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
      }
      // FUSE_SET_ATTR_CTIME: every change sets ctime to the server's clock.
      Ino core = ops->ToCore(ino);
      Attributes a;
      Status s = ops->fs_->SetAttr(core, r, &a);
      if (!s.ok()) return ReplyError(req, s, "setattr");
      struct stat st = ToStat(ops, a);
      fuse_reply_attr(req, &st, ops->options_.settings.attr_timeout);
    });
  }

  static void Readlink(fuse_req_t req, fuse_ino_t ino) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      std::string target;
      Status s = ops->fs_->Readlink(ops->ToCore(ino), &target);
      if (!s.ok()) return ReplyError(req, s, "readlink");
      fuse_reply_readlink(req, target.c_str());
    });
  }

  static void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(parent);
      FileType type;
      switch (mode & S_IFMT) {
        case S_IFREG:
          type = FileType::kRegular;
          break;
        case S_IFCHR:
          type = FileType::kCharDevice;
          break;
        case S_IFBLK:
          type = FileType::kBlockDevice;
          break;
        case S_IFIFO:
          type = FileType::kFifo;
          break;
        case S_IFSOCK:
          type = FileType::kSocket;
          break;
        default:
          fuse_reply_err(req, EINVAL);
          return;
      }
      NewObject obj;
      Status s = NewObjectFor(req, dir, mode, false, &obj);
      Attributes a;
      if (s.ok()) {
        s = type == FileType::kRegular ? ops->fs_->Create(dir, name, obj, /*exclusive=*/true, &a)
                                       : ops->fs_->Mknod(dir, name, type, obj, rdev, &a);
      }
      if (!s.ok()) return ReplyError(req, s, "mknod");
      ReplyEntry(req, dir, name, a);
    });
  }

  static void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(parent);
      NewObject obj;
      Status s = NewObjectFor(req, dir, mode, true, &obj);
      Attributes a;
      if (s.ok()) s = ops->fs_->Mkdir(dir, name, obj, &a);
      if (!s.ok()) return ReplyError(req, s, "mkdir");
      ReplyEntry(req, dir, name, a);
    });
  }

  static void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(parent);
      NewObject obj;
      Status s = NewObjectFor(req, dir, 0777, false, &obj);
      Attributes a;
      if (s.ok()) s = ops->fs_->Symlink(dir, name, target, obj, &a);
      if (!s.ok()) return ReplyError(req, s, "symlink");
      ReplyEntry(req, dir, name, a);
    });
  }

  static void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* name) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(new_parent);
      Attributes a;
      Status s = ops->fs_->Link(ops->ToCore(ino), dir, name, &a);
      if (!s.ok()) return ReplyError(req, s, "link");
      ReplyEntry(req, dir, name, a);
    });
  }

  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Status s = ops->fs_->Unlink(ops->ToCore(parent), name);
      if (!s.ok()) return ReplyError(req, s, "unlink");
      fuse_reply_err(req, 0);
    });
  }

  static void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Status s = ops->fs_->Rmdir(ops->ToCore(parent), name);
      if (!s.ok()) return ReplyError(req, s, "rmdir");
      fuse_reply_err(req, 0);
    });
  }

  // RENAME_NOREPLACE: the kernel looks the new name up afresh (a rename
  // target is always revalidated) under both directories' locks and refuses
  // an existing one itself; what reaches here is a plain rename. The core
  // cannot swap two names in one step: RENAME_EXCHANGE (and WHITEOUT) get
  // EINVAL, as from any file system without them.
  static void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                     const char* new_name, unsigned int flags) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      if (flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      Ino from = ops->ToCore(parent);
      Ino to = ops->ToCore(new_parent);
      Status s = ops->fs_->Rename(from, name, to, new_name);
      if (!s.ok()) return ReplyError(req, s, "rename");
      fuse_reply_err(req, 0);
    });
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino core = ops->ToCore(ino);
      Attributes a;
      Status s = ops->fs_->OpenFile(core);
      if (s.ok()) s = ops->fs_->GetAttr(core, &a);
      if (!s.ok()) {
        // (The core keeps a file open only if OpenFile succeeded.)
        return ReplyError(req, s, "open");
      }
      bool known =
          ops->inodes_.With(core, [&](InodeTable::Node& n) { FileInfoForOpen(ops, &n, a, fi); });
      if (!known) FileInfoForOpen(ops, nullptr, a, fi);
      if (fuse_reply_open(req, fi) != 0) (void)ops->fs_->CloseFile(core);
    });
  }

  // O_CREAT: the kernel asks only for a name it believes absent. If it exists
  // after all (a stale negative entry, -o negative_timeout), ESTALE makes the
  // kernel look the name up again and open the existing file normally.
  static void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                     fuse_file_info* fi) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino dir = ops->ToCore(parent);
      NewObject obj;
      Status s = NewObjectFor(req, dir, mode, false, &obj);
      Attributes a;
      if (s.ok()) {
        s = ops->fs_->Create(dir, name, obj, /*exclusive=*/true, &a);
      }
      if (s.posix_errno() == EEXIST && !(fi->flags & O_EXCL)) {
        fuse_reply_err(req, ESTALE);
        return;
      }
      if (s.ok()) s = ops->fs_->OpenFile(a.ino);
      if (!s.ok()) return ReplyError(req, s, "create");
      fuse_entry_param e = ToEntry(ops, a);
      ops->inodes_.Add(a.ino,
                       dir == ops->options_.root ? std::string_view(name) : std::string_view());
      ops->inodes_.With(a.ino, [&](InodeTable::Node& n) { FileInfoForOpen(ops, &n, a, fi); });
      if (fuse_reply_create(req, &e, fi) != 0) {
        ops->inodes_.Forget(a.ino, 1);
        (void)ops->fs_->CloseFile(a.ino);
      }
    });
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      std::string data;
      bool eof = false;
      Status s = ops->fs_->Read(ops->ToCore(ino), static_cast<uint64_t>(off), size, &data, &eof);
      if (!s.ok()) return ReplyError(req, s, "read");
      fuse_reply_buf(req, data.data(), data.size());
    });
  }

  static void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                    fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino core = ops->ToCore(ino);
      Attributes a;
      Status s = ops->fs_->Write(core, static_cast<uint64_t>(off), std::string_view(buf, size),
                                 Stability::kUnstable, &a);
      if (!s.ok()) return ReplyError(req, s, "write");
      fuse_reply_write(req, size);
    });
  }

  static void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Status s = ops->fs_->Fsync(ops->ToCore(ino));
      if (!s.ok()) return ReplyError(req, s, "flush");
      fuse_reply_err(req, 0);
    });
  }

  static void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Ino core = ops->ToCore(ino);
      Status s = ops->fs_->Fsync(core);
      Status closed = ops->fs_->CloseFile(core);
      if (s.ok()) s = closed;
      if (!s.ok()) return ReplyError(req, s, "release");
      fuse_reply_err(req, 0);
    });
  }

  static void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Status s = ops->fs_->Fsync(ops->ToCore(ino));
      if (!s.ok()) return ReplyError(req, s, "fsync");
      fuse_reply_err(req, 0);
    });
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      const Ino dir = ops->ToCore(ino);
      std::string buf(size, '\0');
      size_t used = 0;
      // Lookups given to the kernel by this reply. A readdirplus entry takes
      // more than 128 bytes: reserved up front, push_back cannot throw.
      std::vector<Ino> counted;
      if (plus) counted.reserve(size / 128 + 1);
      // Adds one entry; false if it does not fit.
      auto add = [&](const std::string& name, const struct stat& st, const fuse_entry_param* e,
                     off_t next) {
        size_t n =
            plus
                ? fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), e, next)
                : fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, next);
        if (n > size - used) return false;
        used += n;
        return true;
      };
      // "." and ".." (offsets 1 and 2; the core's cookies start at 3): no
      // attributes, no lookups.
      if (off < 2) {
        Attributes self;
        Status s = ops->fs_->GetAttr(dir, &self);
        if (!s.ok()) return ReplyError(req, s, "readdir");
        const Ino up = dir == ops->options_.root ? dir : self.parent;
        for (const auto& [name, target, next] :
             {std::tuple<const char*, Ino, off_t>{".", dir, 1}, {"..", up, 2}}) {
          if (off >= next) continue;
          fuse_entry_param e;
          std::memset(&e, 0, sizeof(e));
          e.attr.st_ino = ops->ToNode(target);
          e.attr.st_mode = S_IFDIR;
          if (!add(name, e.attr, &e, next)) break;
        }
      }
      const uint64_t cookie =
          off < static_cast<off_t>(kFirstCookie) ? kStartCookie : static_cast<uint64_t>(off);
      bool eof = false;
      Status s;
      try {
        s = ops->fs_->ReadDir(
            dir, cookie,
            [&](const DirEntry& d) {
              fuse_entry_param e = ToEntry(ops, d.attrs);
              if (!add(d.name, e.attr, &e, static_cast<off_t>(d.cookie))) return false;
              if (plus) {
                ops->inodes_.Add(d.attrs.ino, dir == ops->options_.root ? std::string_view(d.name)
                                                                        : std::string_view());
                counted.push_back(d.attrs.ino);
              }
              return true;
            },
            &eof);
      } catch (...) {
        // Out of memory: no reply carries these entries.
        for (Ino c : counted) ops->inodes_.Forget(c, 1);
        throw;
      }
      // An error after some entries: reply with those (the next call meets
      // the error again at their end).
      if (!s.ok() && used == 0) return ReplyError(req, s, "readdir");
      if (fuse_reply_buf(req, buf.data(), used) != 0) {
        for (Ino c : counted) ops->inodes_.Forget(c, 1);
      }
    });
  }

  static void OpenDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    if (Ops(req)->no_opendir_) {
      fuse_reply_err(req, ENOSYS);
    } else {
      fuse_reply_open(req, fi);
    }
  }

  static void ReadDirPlain(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           fuse_file_info*) {
    ReadDir(req, ino, size, off, /*plus=*/false);
  }

  static void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    ReadDir(req, ino, size, off, /*plus=*/true);
  }

  // Directory changes are durable when replied to; fsyncdir syncs anyway.
  static void FsyncDir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      Status s = ops->fs_->Fsync(ops->ToCore(ino));
      if (!s.ok()) return ReplyError(req, s, "fsyncdir");
      fuse_reply_err(req, 0);
    });
  }

  static void StatFs(fuse_req_t req, fuse_ino_t) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      StatFsInfo info;
      Status s = ops->fs_->StatFs(&info);
      if (!s.ok()) return ReplyError(req, s, "statfs");
      uint64_t total =
          ops->options_.capacity_bytes != 0 ? ops->options_.capacity_bytes : info.total_bytes;
      uint64_t inodes =
          ops->options_.capacity_inodes != 0 ? ops->options_.capacity_inodes : info.total_inodes;
      const uint64_t bsize = info.block_size != 0 ? info.block_size : 4096;
      struct statvfs st;
      std::memset(&st, 0, sizeof(st));
      st.f_bsize = bsize;
      st.f_frsize = bsize;
      st.f_blocks = total / bsize;
      st.f_bfree = (total > info.used_bytes ? total - info.used_bytes : 0) / bsize;
      st.f_bavail = st.f_bfree;
      st.f_files = inodes;
      st.f_ffree = inodes > info.used_inodes ? inodes - info.used_inodes : 0;
      st.f_favail = st.f_ffree;
      st.f_namemax = info.max_name_length;
      fuse_reply_statfs(req, &st);
    });
  }

  // The store keeps no unwritten extents and reserves no space: mode 0 makes
  // the file at least offset + length long (atomically with writes, never
  // shorter), as NFSv4.2 ALLOCATE does; other modes are not supported.
  static void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                        fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      if (mode != 0) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
      }
      if (offset < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      if (static_cast<uint64_t>(offset) > kMaxFileSize - static_cast<uint64_t>(length)) {
        fuse_reply_err(req, EFBIG);
        return;
      }
      SetAttrRequest r;
      r.size = static_cast<uint64_t>(offset) + static_cast<uint64_t>(length);
      r.size_grow_only = true;
      Attributes a;
      Status s = ops->fs_->SetAttr(ops->ToCore(ino), r, &a);
      if (!s.ok()) return ReplyError(req, s, "fallocate");
      fuse_reply_err(req, 0);
    });
  }

  // SEEK_DATA and SEEK_HOLE from the core's runs of stored data (the kernel
  // handles the other whences itself). Costs what is stored past `off`.
  static void Lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
    Guard(req, [&] {
      FuseOperations* ops = Ops(req);
      if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      const Ino core = ops->ToCore(ino);
      Attributes a;
      Status s = ops->fs_->GetAttr(core, &a);
      if (!s.ok()) return ReplyError(req, s, "lseek");
      const uint64_t from = static_cast<uint64_t>(off);
      if (off < 0 || from >= a.size) {
        fuse_reply_err(req, ENXIO);  // at or past the end: neither data nor hole
        return;
      }
      // SEEK_DATA: the first stored byte at or after `from`; SEEK_HOLE: the
      // first byte at or after `from` that no run covers (the end at the
      // latest: it is a hole by definition).
      std::optional<uint64_t> found;
      uint64_t pos = from;
      s = ops->fs_->DataExtents(core, from, [&](uint64_t start, uint64_t length) {
        if (whence == SEEK_DATA) {
          found = std::max(start, from);
          return false;
        }
        if (start > pos) {
          found = pos;
          return false;
        }
        pos = std::max(pos, start + length);
        return pos < a.size;
      });
      if (!s.ok()) return ReplyError(req, s, "lseek");
      if (!found) {
        if (whence == SEEK_DATA) {
          fuse_reply_err(req, ENXIO);  // only holes from `from` to the end
          return;
        }
        found = std::min(pos, a.size);
      }
      fuse_reply_lseek(req, static_cast<off_t>(*found));
    });
  }

  // No extended attributes. ENOSYS tells the kernel once; it then answers
  // EOPNOTSUPP to every xattr call itself without asking again.
  static void SetXattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    fuse_reply_err(req, ENOSYS);
  }
  static void GetXattr(fuse_req_t req, fuse_ino_t, const char*, size_t) {
    fuse_reply_err(req, ENOSYS);
  }
  static void ListXattr(fuse_req_t req, fuse_ino_t, size_t) { fuse_reply_err(req, ENOSYS); }
  static void RemoveXattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, ENOSYS); }
};

const fuse_lowlevel_ops& FuseOperations::Table() {
  static const fuse_lowlevel_ops table = [] {
    fuse_lowlevel_ops t;
    std::memset(&t, 0, sizeof(t));
    t.init = Request::Init;
    t.destroy = Request::Destroy;
    t.lookup = Request::Lookup;
    t.forget = Request::Forget;
    t.forget_multi = Request::ForgetMulti;
    t.getattr = Request::GetAttr;
    t.setattr = Request::SetAttr;
    t.readlink = Request::Readlink;
    t.mknod = Request::Mknod;
    t.mkdir = Request::Mkdir;
    t.unlink = Request::Unlink;
    t.rmdir = Request::Rmdir;
    t.symlink = Request::Symlink;
    t.rename = Request::Rename;
    t.link = Request::Link;
    t.open = Request::Open;
    t.create = Request::Create;
    t.read = Request::Read;
    t.write = Request::Write;
    t.flush = Request::Flush;
    t.release = Request::Release;
    t.fsync = Request::Fsync;
    t.opendir = Request::OpenDir;
    t.readdir = Request::ReadDirPlain;
    t.readdirplus = Request::ReadDirPlus;
    t.fsyncdir = Request::FsyncDir;
    t.statfs = Request::StatFs;
    t.fallocate = Request::Fallocate;
    t.lseek = Request::Lseek;
    t.setxattr = Request::SetXattr;
    t.getxattr = Request::GetXattr;
    t.listxattr = Request::ListXattr;
    t.removexattr = Request::RemoveXattr;
    // Not here, on purpose: releasedir (nothing to keep per open
    // directory), flock/getlk/setlk (the kernel arbitrates locks itself,
    // which is exact for a single mount).
    return t;
  }();
  return table;
}

FuseOperations::FuseOperations(FileSystem* fs, FuseOperationsOptions options)
    : fs_(fs), options_(std::move(options)) {
  StatFsInfo info;
  if (fs_->StatFs(&info).ok() && info.block_size != 0) block_size_ = info.block_size;
}

void FuseOperations::AttachSession(fuse_session* se) {
  std::lock_guard<std::mutex> l(mu_);
  session_ = se;
}

void FuseOperations::DetachSession() {
  std::unique_lock<std::mutex> l(mu_);
  session_ = nullptr;
  cv_.wait(l, [&] { return in_flight_ == 0; });
}

void FuseOperations::Invalidate(Ino ino) {
  fuse_session* se;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (session_ == nullptr) return;
    se = session_;
    ++in_flight_;
  }
  InvalidateNow(se, ino);
  {
    std::lock_guard<std::mutex> l(mu_);
    --in_flight_;
  }
  cv_.notify_all();
}

void FuseOperations::InvalidateNow(fuse_session* se, Ino ino) {
  try {
    if (ino == options_.root || inodes_.With(ino, [](InodeTable::Node&) {})) {
      // Cached attributes, data pages and directory listing. ENOENT: the
      // kernel dropped it meanwhile.
      (void)fuse_lowlevel_notify_inval_inode(se, ToNode(ino), 0, 0);
    }
    if (ino != options_.root) return;
    // Names in the root whose inode changed or went away (a tree replaced,
    // dropped or evicted and re-added).
    for (const auto& [child, name] : inodes_.RootNames()) {
      Attributes a;
      Status s = fs_->Lookup(ino, name, &a);
      if (s.ok() && a.ino == child) continue;
      (void)fuse_lowlevel_notify_inval_entry(se, 1, name.c_str(), name.size());
    }
  } catch (const std::exception& e) {
    options_.log(std::string("invalidation: ") + e.what());
  }
}

}  // namespace kvfs::fusefs
