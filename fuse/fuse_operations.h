// FuseOperations: libfuse 3's low-level operations over a kvfs::FileSystem,
// a thin mapping in the manner of libfuse's passthrough_ll (docs/fuse.md).
//
//   - Node ids are KVFS inode numbers; the mount's root (node id 1) is the
//     served directory (its --subtree). Lookup counts are kept in an
//     InodeTable and dropped at forget: nothing is pinned for the kernel.
//   - open/create mark the file open in the core (FileSystem::OpenFile) and
//     release closes it, so an unlinked file stays readable and writable
//     while open and is deleted at its last release.
//   - Durability: every metadata operation is replied to after the core made
//     it durable; writes are unstable (FileSystem::Write kUnstable) and are
//     made durable before flush (every close), fsync and release reply.
//   - Extended attributes are not supported: the kernel is told so once
//     (ENOSYS) and then answers EOPNOTSUPP itself.
//   - Changes made behind the kernel's back (trees ingested, replaced or
//     evicted through the control socket, the cache manager's loads and
//     evictions) reach it as invalidations (Invalidate) before the change
//     is reported done (kvfs-ingest returns after the kernel dropped what it
//     cached).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/fs/file_system.h"
#include "fuse/inode_table.h"
#include "fuse/mount_options.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace kvfs::fusefs {

struct FuseOperationsOptions {
  // The core inode shown as the mount's root.
  Ino root = kRootIno;
  FuseSettings settings;
  // Reported by statfs instead of the file system's own numbers (0: its own).
  uint64_t capacity_bytes = 0;
  uint64_t capacity_inodes = 0;
  // Receives log lines (store failures, miscounts); never null.
  std::function<void(const std::string&)> log;
};

class FuseOperations {
 public:
  // Serves `fs` (not owned; must outlive this object and the session).
  FuseOperations(FileSystem* fs, FuseOperationsOptions options);
  FuseOperations(const FuseOperations&) = delete;
  FuseOperations& operator=(const FuseOperations&) = delete;

  // The operations table. A session made with it must get this object as
  // its userdata (fuse_session_new's last argument).
  static const fuse_lowlevel_ops& Table();

  // Starts passing invalidations to the kernel through mounted session `se`.
  // Call once, after mounting.
  void AttachSession(fuse_session* se);
  // Stops doing so and waits for an invalidation in progress. Call while the
  // session still serves requests, or once the kernel ended it (an
  // invalidation may wait for a request holding a directory's lock).
  void DetachSession();
  // Tells the kernel that core inode `ino`'s cached attributes and contents
  // are wrong, and for the mount's root also its cached names whose inode
  // changed or went away; returns when the kernel dropped them. From the
  // control server's or the cache manager's thread, never from a request
  // (the kernel may wait for requests to finish). Nothing without a session.
  void Invalidate(Ino ino);

  // The inodes the kernel holds (for tests and the log).
  const InodeTable& inodes() const { return inodes_; }

 private:
  struct Request;
  friend struct Request;

  Ino ToCore(uint64_t node) const { return node == 1 ? options_.root : node; }
  uint64_t ToNode(Ino ino) const { return ino == options_.root ? 1 : ino; }
  void InvalidateNow(fuse_session* se, Ino ino);

  FileSystem* const fs_;
  const FuseOperationsOptions options_;
  InodeTable inodes_;
  // The kernel sends no opendir/releasedir after an ENOSYS (set at init).
  bool no_opendir_ = false;
  // The store's content block size: st_blksize, the I/O size programs use.
  blksize_t block_size_ = 65536;

  std::mutex mu_;
  std::condition_variable cv_;       // in_flight_ went down
  fuse_session* session_ = nullptr;  // guarded by mu_
  int in_flight_ = 0;                // guarded by mu_: invalidations being sent
};

}  // namespace kvfs::fusefs
