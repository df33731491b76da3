#include "ingest/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "common/fs/file_system.h"
#include "common/unique_fd.h"
#include "ingest/ingest.h"

namespace kvfs::ingest {

std::string ControlSocketPath(const std::string& db_path) { return db_path + "/control.sock"; }

std::string StagingDirFor(const std::string& db_path) { return db_path + "/ingest-staging"; }

Status WriteFrame(int fd, std::string_view payload) {
  if (payload.size() > kMaxFrame) return Status::InvalidArgument("message too large");
  std::string frame;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>(n >> (8 * i)));
  frame.append(payload);
  std::string_view rest = frame;
  while (!rest.empty()) {
    ssize_t w = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(errno, "control socket: send");
    rest.remove_prefix(static_cast<size_t>(w));
  }
  return Status::OK();
}

namespace {

Status ReadExactly(int fd, char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, buf, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "control socket: receive");
    if (r == 0) return Status::FromErrno(ECONNRESET, "control socket: connection closed");
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return Status::OK();
}

}  // namespace

Status ReadFrame(int fd, std::string* payload) {
  char size[4];
  KVFS_RETURN_IF_ERROR(ReadExactly(fd, size, sizeof(size)));
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(size[i])) << (8 * i);
  if (n > kMaxFrame) return Status::InvalidArgument("control socket: frame too large");
  payload->resize(n);
  return ReadExactly(fd, payload->data(), n);
}

Status CallControlServer(const std::string& socket_path, const Message& request,
                         Message* response) {
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Status::FromErrno(ENAMETOOLONG, "control socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "connect to " + socket_path);
  }
  KVFS_RETURN_IF_ERROR(WriteFrame(fd.get(), EncodeMessage(request)));
  std::string payload;
  KVFS_RETURN_IF_ERROR(ReadFrame(fd.get(), &payload));
  return DecodeMessage(payload, response);
}

bool AskProgress(const std::string& socket_path, const std::string& id,
                 progress::ProgressSnapshot* out) {
  Message answer;
  return CallControlServer(socket_path, {{"op", "progress"}, {"id", id}}, &answer).ok() &&
         ResponseStatus(answer).ok() && GetProgress(answer, "", out);
}

Status RunRequest(const KVStoreSpec& store, const Message& request, Message* response,
                  bool* via_server, progress::ProgressRegistry* progress) {
  *via_server = false;
  KVFS_RETURN_IF_ERROR(CheckRecordedKVBackend(store.path, store.backend));
  const std::string socket = ControlSocketPath(store.path);
  Status s = CallControlServer(socket, request, response);
  if (s.ok()) {
    *via_server = true;
    return s;
  }
  // ENOENT: no socket; ECONNREFUSED: a socket left by a server that died.
  if (s.posix_errno() != ENOENT && s.posix_errno() != ECONNREFUSED) return s;

  auto op = request.find("op");
  KVStoreSpec spec = store;
  spec.create_if_missing = op != request.end() && op->second == "ingest";
  std::unique_ptr<KVStore> kv;
  s = OpenKVStore(spec, &kv);
  if (!s.ok()) {
    return Status::FromErrno(s.posix_errno(),
                             s.message() + " (no server answers on " + socket +
                                 "; if another process has the store open, it must serve that "
                                 "socket)");
  }
  std::unique_ptr<FileSystem> fs;
  KVFS_RETURN_IF_ERROR(FileSystem::Open(FileSystemOptions(), std::move(kv), &fs));
  ServiceOptions so;
  so.staging_dir = StagingDirFor(store.path);
  so.claim_owner = DefaultClaimOwner();
  so.progress = progress;
  // We hold the database lock: no ingest can be using the staging area.
  KVFS_RETURN_IF_ERROR(CleanStagingDir(so.staging_dir));
  ExecuteRequest(fs.get(), so, request, response, nullptr);
  return Status::OK();
}

}  // namespace kvfs::ingest
