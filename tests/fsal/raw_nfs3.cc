#include "tests/fsal/raw_nfs3.h"

#include <fcntl.h>
#include <poll.h>

#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>

namespace kvfs::fsal_test {
namespace {

// libnfs 4.0 returns `struct nfs_fh *` from nfs_get_fh() but defines the
// struct only in its private headers; this is its layout there.
struct LibnfsFh {
  int len;
  char* val;
};

// Completion of one asynchronous call.
struct Pending {
  bool done = false;
  int rpc_status = 0;
  std::function<void(void*)> on_reply;  // called with the decoded reply
};

void Complete(struct rpc_context* /*rpc*/, int status, void* data, void* private_data) {
  auto* p = static_cast<Pending*>(private_data);
  p->rpc_status = status;
  if (status == RPC_STATUS_SUCCESS && p->on_reply) p->on_reply(data);
  p->done = true;
}

// Runs the event loop of rpc until p completes (10 s at most).
int Wait(struct rpc_context* rpc, Pending* p) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!p->done) {
    if (std::chrono::steady_clock::now() > deadline) return -ETIMEDOUT;
    struct pollfd pfd = {rpc_get_fd(rpc), static_cast<short>(rpc_which_events(rpc)), 0};
    if (poll(&pfd, 1, 100) < 0 && errno != EINTR) return -errno;
    if (rpc_service(rpc, pfd.revents) < 0) return -EIO;
  }
  return p->rpc_status == RPC_STATUS_SUCCESS ? 0 : -EIO;
}

nfs_fh3 ToFh3(const FileHandle& fh) {
  nfs_fh3 f;
  f.data.data_len = static_cast<u_int>(fh.size());
  f.data.data_val = reinterpret_cast<char*>(const_cast<uint8_t*>(fh.data()));
  return f;
}

}  // namespace

int HandleOf(e2e::NfsClient& client, const std::string& path, FileHandle* fh) {
  struct nfsfh* f = nullptr;
  int rc = nfs_open(client.context(), path.c_str(), O_RDONLY, &f);
  if (rc < 0) return rc;
  const auto* h = reinterpret_cast<const LibnfsFh*>(nfs_get_fh(f));
  fh->assign(reinterpret_cast<const uint8_t*>(h->val),
             reinterpret_cast<const uint8_t*>(h->val) + h->len);
  nfs_close(client.context(), f);
  return 0;
}

int RawGetattr(e2e::NfsClient& client, const FileHandle& fh, int* status, uint64_t* fileid) {
  struct rpc_context* rpc = nfs_get_rpc_context(client.context());
  GETATTR3args args;
  std::memset(&args, 0, sizeof(args));
  args.object = ToFh3(fh);
  Pending p;
  p.on_reply = [&](void* data) {
    auto* res = static_cast<GETATTR3res*>(data);
    *status = res->status;
    if (res->status == NFS3_OK && fileid != nullptr) {
      *fileid = res->GETATTR3res_u.resok.obj_attributes.fileid;
    }
  };
  if (rpc_nfs3_getattr_async(rpc, Complete, &args, &p) != 0) return -EIO;
  return Wait(rpc, &p);
}

int RawReaddir(e2e::NfsClient& client, const FileHandle& dir, uint64_t cookie, uint64_t* verifier,
               uint32_t count, std::vector<RawDirEntry>* entries, bool* eof, int* status) {
  struct rpc_context* rpc = nfs_get_rpc_context(client.context());
  READDIR3args args;
  std::memset(&args, 0, sizeof(args));
  args.dir = ToFh3(dir);
  args.cookie = cookie;
  std::memcpy(args.cookieverf, verifier, sizeof(*verifier));
  args.count = count;
  Pending p;
  p.on_reply = [&](void* data) {
    auto* res = static_cast<READDIR3res*>(data);
    *status = res->status;
    if (res->status != NFS3_OK) return;
    const READDIR3resok& ok = res->READDIR3res_u.resok;
    std::memcpy(verifier, ok.cookieverf, sizeof(*verifier));
    for (const entry3* e = ok.reply.entries; e != nullptr; e = e->nextentry) {
      entries->push_back(RawDirEntry{e->name, e->fileid, e->cookie});
    }
    *eof = ok.reply.eof != 0;
  };
  if (rpc_nfs3_readdir_async(rpc, Complete, &args, &p) != 0) return -EIO;
  return Wait(rpc, &p);
}

int RawCreateExclusive(e2e::NfsClient& client, const FileHandle& dir, const std::string& name,
                       uint64_t verifier, int* status, uint64_t* fileid) {
  struct rpc_context* rpc = nfs_get_rpc_context(client.context());
  CREATE3args args;
  std::memset(&args, 0, sizeof(args));
  args.where.dir = ToFh3(dir);
  std::string n = name;
  args.where.name = n.data();
  args.how.mode = EXCLUSIVE;
  std::memcpy(args.how.createhow3_u.verf, &verifier, sizeof(verifier));
  Pending p;
  p.on_reply = [&](void* data) {
    auto* res = static_cast<CREATE3res*>(data);
    *status = res->status;
    *fileid = 0;
    if (res->status == NFS3_OK && res->CREATE3res_u.resok.obj_attributes.attributes_follow) {
      *fileid = res->CREATE3res_u.resok.obj_attributes.post_op_attr_u.attributes.fileid;
    }
  };
  if (rpc_nfs3_create_async(rpc, Complete, &args, &p) != 0) return -EIO;
  return Wait(rpc, &p);
}

int RawRead(e2e::NfsClient& client, const FileHandle& fh, uint64_t offset, uint32_t count,
            int* status, std::string* data, bool* eof) {
  struct rpc_context* rpc = nfs_get_rpc_context(client.context());
  READ3args args;
  std::memset(&args, 0, sizeof(args));
  args.file = ToFh3(fh);
  args.offset = offset;
  args.count = count;
  Pending p;
  p.on_reply = [&](void* reply) {
    auto* res = static_cast<READ3res*>(reply);
    *status = res->status;
    if (res->status != NFS3_OK) return;
    const READ3resok& ok = res->READ3res_u.resok;
    data->assign(ok.data.data_val, ok.data.data_len);
    *eof = ok.eof != 0;
  };
  if (rpc_nfs3_read_async(rpc, Complete, &args, &p) != 0) return -EIO;
  return Wait(rpc, &p);
}

int RawWrite(e2e::NfsClient& client, const FileHandle& fh, uint64_t offset, const std::string& data,
             int* status) {
  struct rpc_context* rpc = nfs_get_rpc_context(client.context());
  WRITE3args args;
  std::memset(&args, 0, sizeof(args));
  args.file = ToFh3(fh);
  args.offset = offset;
  args.count = static_cast<count3>(data.size());
  args.stable = FILE_SYNC;
  args.data.data_len = static_cast<u_int>(data.size());
  args.data.data_val = const_cast<char*>(data.data());
  Pending p;
  p.on_reply = [&](void* reply) { *status = static_cast<WRITE3res*>(reply)->status; };
  if (rpc_nfs3_write_async(rpc, Complete, &args, &p) != 0) return -EIO;
  return Wait(rpc, &p);
}

}  // namespace kvfs::fsal_test
