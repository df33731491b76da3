#include "ingest/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "ingest/control_client.h"
#include "ingest/ingest.h"

namespace kvfs::ingest {

namespace {

// Requests that only read state (counters, listings): answered on the
// accept thread at once, never queued behind a long load or export.
const std::set<std::string> kAnsweredAtOnce = {"ping", "progress", "cache-list", "cache-quota"};

}  // namespace

ControlServer::ControlServer(FileSystem* fs, ControlServerOptions options)
    : fs_(fs), options_(std::move(options)) {}

Status ControlServer::Start(FileSystem* fs, const ControlServerOptions& options,
                            std::unique_ptr<ControlServer>* out) {
  if (options.service.staging_dir.empty()) {
    return Status::InvalidArgument("control server: no staging directory");
  }
  KVFS_RETURN_IF_ERROR(CleanStagingDir(options.service.staging_dir));
  std::unique_ptr<ControlServer> server(new ControlServer(fs, options));
  KVFS_RETURN_IF_ERROR(server->Listen());
  server->executor_thread_ = std::thread([s = server.get()] { s->Execute(); });
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  *out = std::move(server);
  return Status::OK();
}

Status ControlServer::Listen() {
  const std::string& path = options_.socket_path;
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::FromErrno(ENAMETOOLONG, "control socket path '" + path +
                                               "' is empty or longer than " +
                                               std::to_string(sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  listen_fd_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return Status::FromErrno(errno, "control socket");
  // This process has the store open, so no other server can be listening
  // for it: a socket file there is left over from a crash.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(listen_fd_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "bind control socket " + path);
  }
  // Nobody can connect before listen(): restrict the socket first.
  if (::chmod(path.c_str(), 0600) != 0 || ::lstat(path.c_str(), &st) != 0) {
    Status s = Status::FromErrno(errno, "chmod control socket " + path);
    ::unlink(path.c_str());
    return s;
  }
  socket_ino_ = st.st_ino;
  if (::listen(listen_fd_.get(), 16) != 0) {
    Status s = Status::FromErrno(errno, "listen on control socket " + path);
    ::unlink(path.c_str());
    return s;
  }
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!wake_fd_.valid()) {
    Status s = Status::FromErrno(errno, "eventfd");
    ::unlink(path.c_str());
    return s;
  }
  return Status::OK();
}

ControlServer::~ControlServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (::write(wake_fd_.get(), &one, sizeof(one)) < 0) {
      // An eventfd write only fails on overflow, which one write cannot
      // cause; shutdown() wakes poll() as well.
      ::shutdown(listen_fd_.get(), SHUT_RDWR);
    }
    thread_.join();
  }
  if (executor_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      stopping_ = true;
      queue_.clear();  // closes the waiting connections unanswered
    }
    queue_cv_.notify_all();
    executor_thread_.join();
  }
  // Remove the socket only if it is still ours.
  struct stat st;
  if (socket_ino_ != 0 && ::lstat(options_.socket_path.c_str(), &st) == 0 &&
      st.st_ino == socket_ino_) {
    ::unlink(options_.socket_path.c_str());
  }
}

void ControlServer::AddInvalidateListener(const void* key, std::function<void(Ino)> listener) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  listeners_[key] = std::move(listener);
}

void ControlServer::RemoveInvalidateListener(const void* key) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  listeners_.erase(key);
}

void ControlServer::SetRequestHandler(RequestHandler handler) {
  std::lock_guard<std::mutex> l(handler_mu_);
  handler_ = std::move(handler);
}

void ControlServer::Invalidate(const std::vector<Ino>& inodes) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  for (Ino ino : inodes) {
    for (auto& [key, fn] : listeners_) fn(ino);
  }
}

void ControlServer::Run() {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) return;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;  // the client went away, or EMFILE: try again later
    Receive(std::move(conn));
  }
}

void ControlServer::Receive(UniqueFd conn) {
  const int fd = conn.get();
  // A client that stops sending its request, or stops reading its answer,
  // holds up the thread that serves it for this long at most.
  struct timeval tv = {options_.request_timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  Message request, response;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  std::string payload;
  const bool allowed = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                       (cred.uid == 0 || cred.uid == ::geteuid());
  // Read the request even from a peer that is refused: closing a socket with
  // unread data resets the connection, and the refusal would never arrive.
  if (Status s = ReadFrame(fd, &payload); !s.ok()) {
    return;  // nothing sensible to answer
  } else if (!allowed) {
    response["errno"] = std::to_string(EPERM);
    response["message"] = "only root or the server's user may use the control socket";
  } else if (s = DecodeMessage(payload, &request); !s.ok()) {
    response["errno"] = std::to_string(s.posix_errno());
    response["message"] = s.message();
  } else if (auto op = request.find("op");
             op != request.end() && kAnsweredAtOnce.count(op->second) > 0) {
    Dispatch(request, &response);
  } else {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (queue_.size() < kMaxWaitingRequests) {
      queue_.push_back(Waiting{std::move(conn), std::move(request)});
      queue_cv_.notify_one();
      return;
    }
    response["errno"] = std::to_string(EBUSY);
    response["message"] = "the server's control socket has " + std::to_string(kMaxWaitingRequests) +
                          " requests waiting already; try again later";
  }
  Answer(fd, response);
}

void ControlServer::Execute() {
  for (;;) {
    Waiting w;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    Message response;
    Dispatch(w.request, &response);
    Answer(w.conn.get(), response);
  }
}

void ControlServer::Dispatch(const Message& request, Message* response) {
  RequestHandler handler;
  {
    std::lock_guard<std::mutex> l(handler_mu_);
    handler = handler_;
  }
  if (handler == nullptr || !handler(request, response)) {
    std::vector<Ino> changed;
    ExecuteRequest(fs_, options_.service, request, response, &changed);
    Invalidate(changed);
  }
}

void ControlServer::Answer(int fd, const Message& response) {
  ++requests_;
  std::string payload = EncodeMessage(response);
  if (payload.size() > kMaxFrame) {
    // Not sent: a clear error instead of a closed connection. (Responses
    // that grow with the store, such as cache-list, come in pages.)
    payload = EncodeMessage(
        {{"errno", std::to_string(EMSGSIZE)},
         {"message", "the response (" + std::to_string(payload.size()) +
                         " bytes) is larger than a control frame (" + std::to_string(kMaxFrame) +
                         " bytes); the request's effect stands"}});
  }
  // The client may have given up; the request's effect stands regardless.
  WriteFrame(fd, payload).ok();
}

Status StartStoreControlServer(FileSystem* fs, const std::string& db_path,
                               std::unique_ptr<ControlServer>* out,
                               std::function<void(const std::string&)> log,
                               const std::string& coordination,
                               progress::ProgressRegistry* progress) {
  ControlServerOptions o;
  o.socket_path = ControlSocketPath(db_path);
  o.service.staging_dir = StagingDirFor(db_path);
  o.service.claim_owner = DefaultClaimOwner();
  o.service.log = std::move(log);
  o.service.coordination = coordination;
  o.service.progress = progress;
  return ControlServer::Start(fs, o, out);
}

}  // namespace kvfs::ingest
