// ControlServer: the ingest service of a process that has the store open,
// reached over a Unix stream socket.
//
// RocksDB allows one process to open a database, so while a server (the NFS
// FSAL) holds the store, kvfs-ingest, kvfs-export and kvfs-evict send their
// request to it instead (docs/ingest.md). The server runs each request with
// the same library the tools use directly (ExecuteRequest), on its own
// thread, while the FileSystem keeps serving everyone else; requests are
// executed one at a time, in the order they arrived (at most
// kMaxWaitingRequests wait; more are refused with EBUSY). Requests that only
// read (ping, progress, cache-list, cache-quota) are answered at once, also
// while another request runs. After a request changed the tree, every
// invalidation listener is called with each inode whose cached state is now
// wrong (the root; a replaced or evicted top directory): the FSAL uses it to
// refresh Ganesha's cache.
//
// Wire format: a request and its response are each one frame, [length:4
// LE][EncodeMessage bytes], at most 1 MiB. Only clients with the server's
// effective uid or root may connect (SO_PEERCRED); the socket is mode 0600.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "ingest/service.h"

namespace kvfs::ingest {

struct ControlServerOptions {
  // Where to listen (at most 107 bytes). A stale socket file there is
  // replaced.
  std::string socket_path;
  ServiceOptions service;
  // Seconds a client may take to send its request, and to take in each part
  // of its answer (a client that stops reading loses its answer, and holds
  // up the requests behind it no longer).
  int request_timeout_seconds = 30;
};

class ControlServer {
 public:
  // Requests read and waiting for the one that runs; more are refused.
  static constexpr size_t kMaxWaitingRequests = 16;

  // Cleans the staging directory (nothing else can be using it while this
  // process has the store open), binds the socket and starts serving `fs`
  // (not owned; must outlive the server).
  static Status Start(FileSystem* fs, const ControlServerOptions& options,
                      std::unique_ptr<ControlServer>* out);
  // Stops serving (waits for a request in progress) and removes the socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Adds (or replaces) the listener registered under `key`. Listeners run
  // on the server's thread, one at a time.
  void AddInvalidateListener(const void* key, std::function<void(Ino)> listener);
  // Removes the listener registered under `key` (if any); when it returns,
  // the listener is not running and will not be called again.
  void RemoveInvalidateListener(const void* key);
  // Calls every listener with each of `inodes` (for changes made by others
  // than the server's own requests, such as the cache manager's loads).
  void Invalidate(const std::vector<Ino>& inodes);

  // Requests the ingest service does not know go to `handler`, which
  // returns false for ops it does not know either (then refused). Set it
  // before the first such request.
  using RequestHandler = std::function<bool(const Message& request, Message* response)>;
  void SetRequestHandler(RequestHandler handler);

  const std::string& socket_path() const { return options_.socket_path; }
  // Requests answered so far.
  uint64_t requests() const { return requests_.load(); }

 private:
  // A connection whose request was read, waiting to be executed.
  struct Waiting {
    UniqueFd conn;
    Message request;
  };

  ControlServer(FileSystem* fs, ControlServerOptions options);
  Status Listen();
  // Accepts connections and reads their requests (the accept thread).
  void Run();
  // Reads the request of `conn`; answers it here if it is refused,
  // malformed or a progress request, else queues it for Execute.
  void Receive(UniqueFd conn);
  // Executes queued requests one at a time (the executor thread).
  void Execute();
  // Runs `request`: the request handler's, else the ingest service's.
  void Dispatch(const Message& request, Message* response);
  void Answer(int fd, const Message& response);

  FileSystem* const fs_;
  const ControlServerOptions options_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: written to stop Run()
  ino_t socket_ino_ = 0;
  std::thread thread_;           // Run
  std::thread executor_thread_;  // Execute
  std::atomic<uint64_t> requests_{0};
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Waiting> queue_;  // guarded by queue_mu_
  bool stopping_ = false;      // guarded by queue_mu_
  std::mutex listeners_mu_;
  std::map<const void*, std::function<void(Ino)>> listeners_;  // guarded by listeners_mu_
  std::mutex handler_mu_;
  RequestHandler handler_;  // guarded by handler_mu_
};

// Starts the control server of the store in directory db_path, as the
// process that has it open (the NFS server) does: socket
// ControlSocketPath(db_path), staging directory StagingDirFor(db_path), no
// quotas beyond the requests' own, this process as the owner of range
// claims, `coordination` (a URL, "" for none) as the holder of the claims
// of requests that name none; `log` (if not null) receives the log lines of
// the persistent stores requests open; `progress` (if not null, must outlive
// the server) tracks the requests that carry a progress_id.
Status StartStoreControlServer(FileSystem* fs, const std::string& db_path,
                               std::unique_ptr<ControlServer>* out,
                               std::function<void(const std::string&)> log = nullptr,
                               const std::string& coordination = "",
                               progress::ProgressRegistry* progress = nullptr);

}  // namespace kvfs::ingest
