// FaultProxy: an HTTP/1.1 proxy of the tests in front of a real S3 server,
// which forwards requests unchanged unless a rule says to fail them: an
// error answer (503 SlowDown, 500, 403...), a response cut after some bytes,
// a connection dropped without an answer, a request stalled (no answer
// until the client gives up) or held until the test releases it, a delay,
// or no listener at all (connection refused). It also records every request
// (method, target, status, bytes each way), which the benchmarks use to
// count what a load or a write-back costs the server.
//
// It listens on 127.0.0.1 (an ephemeral port) in the network namespace of
// the thread that starts it and connects to the server in another one if
// asked (`upstream_netns`, a namespace file such as the one
// tests/s3/s3-fixture.sh bind-mounts): so a test in a private namespace
// of its own (ganesha.nfsd's) reaches a server kept in the fixture's.
// Thread per connection; for tests and benchmarks, not production.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace kvfs::s3_test {

struct FaultRule {
  enum class Action {
    kRespond,      // answer `status` with S3 error `code` instead of forwarding
    kCutResponse,  // forward, but close both connections after `after_bytes`
                   // bytes of the response body
    kDrop,         // close the client's connection without an answer
    kStall,        // never answer (until the client closes or the proxy stops)
    kHold,         // wait until ReleaseHeld(), then forward
    kDelay,        // wait `delay_ms`, then forward
  };
  Action action = Action::kRespond;
  // Which requests: every one whose method is `method` ("" : any) and whose
  // target (path and query) contains `target_contains` ("" : any). Rules
  // are tried in the order they were added; the first that acts on a
  // request takes it (the later ones do not see it).
  std::string method;
  std::string target_contains;
  // Let this many matching requests through first, then act on `count` of
  // them (-1: all that follow).
  int skip = 0;
  int count = 1;
  int status = 503;
  std::string code = "SlowDown";
  uint64_t after_bytes = 0;
  int delay_ms = 0;
};

// One request that went through (or was failed by) the proxy.
struct ProxiedRequest {
  std::string method;
  std::string target;
  std::string head;             // the request line and headers as received
  int status = 0;               // the answer's status (0: none)
  uint64_t request_bytes = 0;   // head and body, client to server
  uint64_t response_bytes = 0;  // head and body, server to client
  bool faulted = false;         // a rule acted on it
};

class FaultProxy {
 public:
  // Starts a proxy to upstream_host:upstream_port, connecting in network
  // namespace file `upstream_netns` ("" : this thread's).
  static Status Start(const std::string& upstream_host, int upstream_port,
                      const std::string& upstream_netns, std::unique_ptr<FaultProxy>* out);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // "http://127.0.0.1:PORT".
  std::string endpoint() const;
  int port() const { return port_; }

  void AddRule(const FaultRule& rule);
  void ClearRules();

  // The requests received so far, in order. A request is listed from the
  // moment its head arrives; its counts grow before the bytes they count
  // are passed on, so they are complete once the client has its answer.
  std::vector<ProxiedRequest> Requests() const;
  void ClearRequests();

  // Requests waiting on a kHold rule; ReleaseHeld lets them go on.
  int Held() const;
  void ReleaseHeld();
  // Waits until at least n requests are held (at most a minute, or until
  // the proxy stops); true if they are.
  bool WaitHeld(int n) const;

  // While refusing, nothing listens on the port: connections are refused.
  // Open connections are closed.
  Status SetRefusing(bool refusing);

 private:
  FaultProxy() = default;
  Status Listen();
  void AcceptLoop();
  void Serve(int client_fd);
  // The rule that takes this request, if any (its counters advanced).
  bool Match(const std::string& method, const std::string& target, FaultRule* rule);
  // Lists a new request; its index.
  size_t Record(const ProxiedRequest& r);
  // Changes listed request `index`.
  void Update(size_t index, const std::function<void(ProxiedRequest*)>& change);
  void Track(int fd, bool add);

  std::string upstream_host_;
  int upstream_port_ = 0;
  std::string upstream_netns_;
  int port_ = 0;
  std::atomic<int> listen_fd_{-1};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  struct ActiveRule {
    FaultRule rule;
    int seen = 0;
    int acted = 0;
  };
  std::vector<ActiveRule> rules_;         // guarded by mu_
  std::vector<ProxiedRequest> requests_;  // guarded by mu_
  int held_ = 0;                          // guarded by mu_
  uint64_t release_generation_ = 0;       // guarded by mu_
  std::vector<int> open_fds_;             // guarded by mu_
  std::vector<std::thread> workers_;      // guarded by mu_
};

}  // namespace kvfs::s3_test
