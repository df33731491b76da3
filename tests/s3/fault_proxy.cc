#include "tests/s3/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

namespace kvfs::s3_test {
namespace {

constexpr size_t kMaxHead = 64 * 1024;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool WriteAll(int fd, const std::string& s) { return WriteAll(fd, s.data(), s.size()); }

// Buffered reads from a socket.
class Stream {
 public:
  explicit Stream(int fd) : fd_(fd) {}

  // Reads a request or response head (through the empty line).
  bool ReadHead(std::string* head) { return ReadThrough("\r\n\r\n", head); }

  // Reads one line, "\r\n" included.
  bool ReadLine(std::string* line) { return ReadThrough("\r\n", line); }

  // Reads up to n bytes; 0 at the end of the stream or on an error.
  size_t ReadSome(char* out, size_t n) {
    if (pos_ == buf_.size() && !Fill()) return 0;
    const size_t take = std::min(n, buf_.size() - pos_);
    std::memcpy(out, buf_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  // Reads through the next `end` (at most kMaxHead bytes before it).
  bool ReadThrough(std::string_view end, std::string* out) {
    for (;;) {
      const size_t at = buf_.find(end, pos_);
      if (at != std::string::npos) {
        *out = buf_.substr(pos_, at + end.size() - pos_);
        pos_ = at + end.size();
        return true;
      }
      if (buf_.size() - pos_ > kMaxHead || !Fill()) return false;
    }
  }

  bool Fill() {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    char tmp[64 * 1024];
    for (;;) {
      ssize_t r = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(r));
      return true;
    }
  }

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

struct Head {
  std::string first_line;
  std::map<std::string, std::string> fields;  // lower-case names
};

Head ParseHead(const std::string& text) {
  Head h;
  size_t pos = text.find("\r\n");
  h.first_line = text.substr(0, pos);
  while (pos != std::string::npos && pos + 2 < text.size()) {
    const size_t next = text.find("\r\n", pos + 2);
    const std::string line = text.substr(pos + 2, next - pos - 2);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      h.fields[Lower(line.substr(0, colon))] = v;
    }
    pos = next;
  }
  return h;
}

int StatusOf(const Head& h) {
  const size_t sp = h.first_line.find(' ');
  return sp == std::string::npos ? 0 : std::atoi(h.first_line.c_str() + sp + 1);
}

std::string Field(const Head& h, const char* name) {
  auto it = h.fields.find(name);
  return it == h.fields.end() ? std::string() : it->second;
}

// Counts bytes passed on: called with each piece before it is written.
using Counter = std::function<void(uint64_t)>;

// Copies n bytes from `from` to fd `to`, at most `limit` in all (*count
// says how many went before; *cut set if the limit stopped it).
bool Relay(Stream* from, int to, uint64_t n, uint64_t limit, bool* cut, uint64_t* count,
           const Counter& counter) {
  char buf[64 * 1024];
  while (n > 0) {
    if (*count >= limit) {
      *cut = true;
      return false;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>({n, sizeof(buf), limit - *count}));
    const size_t got = from->ReadSome(buf, want);
    if (got == 0) return false;
    counter(got);
    *count += got;
    if (!WriteAll(to, buf, got)) return false;
    n -= got;
  }
  return true;
}

// Relays a chunked body, framing included.
bool RelayChunked(Stream* from, int to, uint64_t limit, bool* cut, uint64_t* count,
                  const Counter& counter) {
  for (;;) {
    std::string line;
    if (!from->ReadLine(&line)) return false;
    counter(line.size());
    *count += line.size();
    if (!WriteAll(to, line)) return false;
    const uint64_t size = std::strtoull(line.c_str(), nullptr, 16);
    if (size == 0) {
      // Trailers, then the empty line.
      for (;;) {
        if (!from->ReadLine(&line)) return false;
        counter(line.size());
        if (!WriteAll(to, line)) return false;
        if (line == "\r\n") return true;
      }
    }
    if (!Relay(from, to, size + 2, limit, cut, count, counter)) return false;
  }
}

const char* Reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

Status FaultProxy::Start(const std::string& upstream_host, int upstream_port,
                         const std::string& upstream_netns, std::unique_ptr<FaultProxy>* out) {
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->upstream_host_ = upstream_host;
  p->upstream_port_ = upstream_port;
  p->upstream_netns_ = upstream_netns;
  KVFS_RETURN_IF_ERROR(p->Listen());
  p->acceptor_ = std::thread([raw = p.get()] { raw->AcceptLoop(); });
  *out = std::move(p);
  return Status::OK();
}

Status FaultProxy::Listen() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "proxy socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    Status s = Status::FromErrno(errno, "proxy bind/listen on port " + std::to_string(port_));
    ::close(fd);
    return s;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
  return Status::OK();
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  if (int fd = listen_fd_.exchange(-1); fd >= 0) {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (std::thread& t : workers) t.join();
}

std::string FaultProxy::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FaultProxy::AddRule(const FaultRule& rule) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back(ActiveRule{rule});
}

void FaultProxy::ClearRules() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

std::vector<ProxiedRequest> FaultProxy::Requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FaultProxy::ClearRequests() {
  std::lock_guard<std::mutex> l(mu_);
  requests_.clear();
}

int FaultProxy::Held() const {
  std::lock_guard<std::mutex> l(mu_);
  return held_;
}

void FaultProxy::ReleaseHeld() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++release_generation_;
  }
  cv_.notify_all();
}

bool FaultProxy::WaitHeld(int n) const {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, std::chrono::minutes(1), [&] { return held_ >= n || stopping_; });
  return held_ >= n;
}

Status FaultProxy::SetRefusing(bool refusing) {
  if (refusing) {
    if (int fd = listen_fd_.exchange(-1); fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    return Status::OK();
  }
  if (listen_fd_ >= 0) return Status::OK();
  KVFS_RETURN_IF_ERROR(Listen());
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::OK();
}

void FaultProxy::AcceptLoop() {
  const int fd = listen_fd_;
  for (;;) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      return;  // shut down
    }
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      ::close(c);
      return;
    }
    open_fds_.push_back(c);
    workers_.emplace_back([this, c] { Serve(c); });
  }
}

void FaultProxy::Track(int fd, bool add) {
  std::lock_guard<std::mutex> l(mu_);
  if (add) {
    open_fds_.push_back(fd);
  } else {
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  }
}

bool FaultProxy::Match(const std::string& method, const std::string& target, FaultRule* rule) {
  std::lock_guard<std::mutex> l(mu_);
  for (ActiveRule& r : rules_) {
    if (!r.rule.method.empty() && r.rule.method != method) continue;
    if (target.find(r.rule.target_contains) == std::string::npos) continue;
    if (r.seen++ < r.rule.skip) continue;
    if (r.rule.count >= 0 && r.acted >= r.rule.count) continue;
    ++r.acted;
    *rule = r.rule;
    return true;
  }
  return false;
}

size_t FaultProxy::Record(const ProxiedRequest& r) {
  std::lock_guard<std::mutex> l(mu_);
  requests_.push_back(r);
  return requests_.size() - 1;
}

void FaultProxy::Update(size_t index, const std::function<void(ProxiedRequest*)>& change) {
  std::lock_guard<std::mutex> l(mu_);
  if (index < requests_.size()) change(&requests_[index]);  // (unless cleared meanwhile)
}

void FaultProxy::Serve(int client_fd) {
  // Connections to the server are made in its namespace (this thread's
  // only: setns changes the calling thread).
  if (!upstream_netns_.empty()) {
    int ns = ::open(upstream_netns_.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
      if (ns >= 0) ::close(ns);
      Track(client_fd, false);
      ::close(client_fd);
      return;
    }
    ::close(ns);
  }
  Stream client(client_fd);
  int up = -1;
  std::unique_ptr<Stream> upstream;
  auto connect_upstream = [&]() -> bool {
    up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0) return false;
    int one = 1;
    ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    if (::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(up);
      up = -1;
      return false;
    }
    Track(up, true);
    upstream = std::make_unique<Stream>(up);
    return true;
  };

  while (!stopping_) {
    std::string head_text;
    if (!client.ReadHead(&head_text)) break;
    const Head head = ParseHead(head_text);
    ProxiedRequest first;
    {
      const size_t a = head.first_line.find(' ');
      const size_t b = head.first_line.find(' ', a + 1);
      first.method = head.first_line.substr(0, a);
      first.target = head.first_line.substr(a + 1, b - a - 1);
    }
    first.head = head_text;
    first.request_bytes = head_text.size();
    const std::string method = first.method;
    const size_t index = Record(first);
    auto update = [&](const std::function<void(ProxiedRequest*)>& change) {
      Update(index, change);
    };
    const Counter to_server = [&](uint64_t n) {
      update([n](ProxiedRequest* r) { r->request_bytes += n; });
    };
    const Counter to_client = [&](uint64_t n) {
      update([n](ProxiedRequest* r) { r->response_bytes += n; });
    };
    FaultRule rule;
    uint64_t limit = UINT64_MAX;
    if (Match(first.method, first.target, &rule)) {
      update([](ProxiedRequest* r) { r->faulted = true; });
      using A = FaultRule::Action;
      if (rule.action == A::kRespond) {
        const std::string body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + rule.code +
            "</Code><Message>injected by the test proxy</Message><RequestId>proxy-fault"
            "</RequestId></Error>";
        const std::string answer =
            "HTTP/1.1 " + std::to_string(rule.status) + " " + Reason(rule.status) +
            "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n" + body;
        update([&](ProxiedRequest* r) { r->status = rule.status; });
        to_client(answer.size());
        WriteAll(client_fd, answer);
        break;
      }
      if (rule.action == A::kDrop) break;
      if (rule.action == A::kStall) {
        while (!stopping_) {
          pollfd p{client_fd, POLLRDHUP, 0};
          if (::poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) break;
        }
        break;
      }
      if (rule.action == A::kHold) {
        std::unique_lock<std::mutex> l(mu_);
        const uint64_t generation = release_generation_;
        ++held_;
        cv_.notify_all();
        cv_.wait(l, [&] { return release_generation_ != generation || stopping_; });
        --held_;
      } else if (rule.action == A::kDelay) {
        std::this_thread::sleep_for(std::chrono::milliseconds(rule.delay_ms));
      } else if (rule.action == A::kCutResponse) {
        limit = rule.after_bytes;
      }
    }
    // (A server that cannot be reached: the client sees its connection
    // closed, as if the server were down.)
    if (up < 0 && !connect_upstream()) break;
    if (!WriteAll(up, head_text)) break;
    const uint64_t length = std::strtoull(Field(head, "content-length").c_str(), nullptr, 10);
    const bool expect = Lower(Field(head, "expect")).find("100-continue") != std::string::npos;
    bool cut = false, ok = true, body_skipped = false;
    std::string answer_text;
    Head answer;
    if (expect && length > 0) {
      if (!upstream->ReadHead(&answer_text)) break;
      answer = ParseHead(answer_text);
      if (StatusOf(answer) == 100) {
        to_client(answer_text.size());
        if (!WriteAll(client_fd, answer_text)) break;
        answer_text.clear();
      } else {
        body_skipped = true;  // a final answer: the client will not send it
      }
    }
    if (answer_text.empty()) {
      uint64_t sent = 0;
      bool unused = false;
      if (!Relay(&client, up, length, UINT64_MAX, &unused, &sent, to_server)) break;
      // Interim answers other than the one handled above go through as they are.
      for (;;) {
        if (!upstream->ReadHead(&answer_text)) {
          ok = false;
          break;
        }
        answer = ParseHead(answer_text);
        const int st = StatusOf(answer);
        if (st >= 200 || st < 100) break;
        to_client(answer_text.size());
        if (!WriteAll(client_fd, answer_text)) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
    }
    const int status = StatusOf(answer);
    update([status](ProxiedRequest* r) { r->status = status; });
    to_client(answer_text.size());
    if (!WriteAll(client_fd, answer_text)) break;
    const bool no_body = method == "HEAD" || status == 204 || status == 304;
    uint64_t body = 0;
    bool until_eof = false;
    if (!no_body) {
      if (Lower(Field(answer, "transfer-encoding")).find("chunked") != std::string::npos) {
        ok = RelayChunked(upstream.get(), client_fd, limit, &cut, &body, to_client);
      } else if (!Field(answer, "content-length").empty()) {
        ok = Relay(upstream.get(), client_fd,
                   std::strtoull(Field(answer, "content-length").c_str(), nullptr, 10), limit, &cut,
                   &body, to_client);
      } else {
        until_eof = true;
        Relay(upstream.get(), client_fd, UINT64_MAX, limit, &cut, &body, to_client);
      }
    }
    if (!ok || cut || until_eof || body_skipped || Lower(Field(answer, "connection")) == "close" ||
        Lower(Field(head, "connection")) == "close") {
      break;
    }
  }
  if (up >= 0) {
    Track(up, false);
    ::close(up);
  }
  Track(client_fd, false);
  ::close(client_fd);
}

}  // namespace kvfs::s3_test
