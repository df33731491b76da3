#include "coord/etcd_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace kvfs::coord {

namespace {

using json = nlohmann::json;

// The most of a response kept: etcd's own limit on a request is 1.5 MiB, a
// range answer of KVFS's keys is far smaller.
constexpr size_t kMaxResponse = 64 << 20;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kBase64[(v >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Status Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::char_traits<char>::find(kBase64, 64, c);
    if (p == nullptr) return Status::IOError("etcd answered with invalid base64");
    acc = (acc << 6) | uint32_t(p - kBase64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += char((acc >> bits) & 0xff);
    }
  }
  return Status::OK();
}

// etcd's int64 fields are JSON strings ("123"); absent means 0.
int64_t Int(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);  // malformed: 0
    return v;
  }
  return 0;
}

Status DecodeKeyValue(const json& j, EtcdKeyValue* out) {
  KVFS_RETURN_IF_ERROR(Base64Decode(j.value("key", ""), &out->key));
  KVFS_RETURN_IF_ERROR(Base64Decode(j.value("value", ""), &out->value));
  out->create_revision = Int(j, "create_revision");
  out->mod_revision = Int(j, "mod_revision");
  out->version = Int(j, "version");
  out->lease = Int(j, "lease");
  return Status::OK();
}

// The end of the range of keys starting with `prefix` (etcd's range_end):
// the prefix with its last byte below 0xff incremented, or "\0" (every key)
// if there is none.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) != 0xff) {
      prefix.back() = char(static_cast<uint8_t>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxResponse) return 0;  // fails the transfer
  body->append(data, size * n);
  return size * n;
}

// Sets `h` up to POST JSON `body` (which must outlive the transfer) to
// `url`, without signals, its error text into `error` (CURL_ERROR_SIZE
// bytes). Returns the header list to free after the transfer.
curl_slist* SetUpPost(CURL* h, const std::string& url, const std::string& body, char* error,
                      int connect_timeout_ms) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_ms));
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  return headers;
}

// What a watch stream's write callback keeps: the bytes of a line not yet
// complete, and what to do with each complete one.
struct WatchStream {
  std::string partial;
  std::function<void(const std::string&)> line;
  std::function<bool()> stopped;
};

size_t WatchData(char* data, size_t size, size_t n, void* user) {
  auto* w = static_cast<WatchStream*>(user);
  w->partial.append(data, size * n);
  if (w->partial.size() > kMaxResponse) return 0;  // fails the transfer
  size_t nl;
  while ((nl = w->partial.find('\n')) != std::string::npos) {
    const std::string line = w->partial.substr(0, nl);
    w->partial.erase(0, nl + 1);
    w->line(line);
  }
  return size * n;
}

int WatchProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<WatchStream*>(user)->stopped() ? 1 : 0;  // non-zero aborts
}

// The outcome of one attempt on one member.
struct Attempt {
  Status status;
  // Worth trying on another member (not reached, timed out, no leader).
  bool retry_elsewhere = false;
};

}  // namespace

struct EtcdClient::Impl {
  EtcdClientOptions options;
  std::mutex mu;
  size_t current = 0;          // the member that answered last; guarded by mu
  std::vector<CURL*> handles;  // idle handles; guarded by mu

  ~Impl() {
    for (CURL* h : handles) curl_easy_cleanup(h);
  }

  CURL* TakeHandle() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!handles.empty()) {
        CURL* h = handles.back();
        handles.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void GiveBack(CURL* h) {
    std::lock_guard<std::mutex> l(mu);
    handles.push_back(h);
  }

  // POSTs `body` to `path` of `endpoint`; on success *reply is the answer.
  Attempt Post(const std::string& endpoint, const std::string& path, const std::string& body,
               json* reply) {
    CURL* h = TakeHandle();
    if (h == nullptr) return {Status::FromErrno(ENOMEM, "curl_easy_init failed"), false};
    std::string response;
    char error[CURL_ERROR_SIZE] = "";
    const std::string url = endpoint + path;
    curl_easy_reset(h);
    curl_slist* headers = SetUpPost(h, url, body, error, options.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout_ms));
    const CURLcode rc = curl_easy_perform(h);
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    curl_slist_free_all(headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    if (rc != CURLE_OK) {
      // A connection in an unknown state is not reused.
      curl_easy_cleanup(h);
      const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
      return {Status::FromErrno(rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EHOSTUNREACH, why),
              true};
    }
    GiveBack(h);
    json j = json::parse(response, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      // A streaming answer (keep-alive) is one JSON object per line.
      const size_t nl = response.find('\n');
      if (nl != std::string::npos) j = json::parse(response.substr(0, nl), nullptr, false);
    }
    if (j.is_discarded() || !j.is_object()) {
      return {Status::IOError("HTTP " + std::to_string(http) +
                              ", not JSON: " + response.substr(0, 200)),
              http >= 500};
    }
    if (http == 200 && !j.contains("error")) {
      *reply = std::move(j);
      return {Status::OK(), false};
    }
    // {"error": ..., "message": ..., "code": gRPC code}
    const json& err = j.contains("error") && j["error"].is_object() ? j["error"] : j;
    const std::string message = err.value("message", err.value("error", std::string("?")));
    const int code = err.value("code", 0);
    // gRPC codes: 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE (no leader, leader
    // changed, stopping).
    const bool unavailable = code == 4 || code == 14 || http == 502 || http == 503 || http == 504;
    int err_no = EIO;
    if (code == 5) err_no = ENOENT;
    if (code == 3 || code == 11) err_no = EINVAL;
    if (code == 8) err_no = E2BIG;
    if (code == 7 || code == 16) err_no = EACCES;
    if (unavailable) err_no = EAGAIN;
    return {Status::FromErrno(err_no, "etcd: " + message + " (HTTP " + std::to_string(http) + ")"),
            unavailable};
  }

  // Runs one request against the members until one answers (see the header).
  Status Call(const std::string& path, const json& request, json* reply) {
    const std::string body = request.dump();
    const size_t n = options.endpoints.size();
    std::vector<std::string> why(n);
    int backoff = options.backoff_ms;
    Status last;
    for (int round = 0; round < std::max(1, options.rounds); ++round) {
      if (round > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
        backoff = std::min(backoff * 2, 5000);
      }
      size_t start;
      {
        std::lock_guard<std::mutex> l(mu);
        start = current;
      }
      for (size_t k = 0; k < n; ++k) {
        const size_t i = (start + k) % n;
        Attempt a = Post(options.endpoints[i], path, body, reply);
        if (!a.retry_elsewhere) {
          if (a.status.ok()) {
            std::lock_guard<std::mutex> l(mu);
            current = i;
          }
          return a.status;
        }
        why[i] = a.status.message();
        last = a.status;
        if (options.log) {
          options.log("etcd: " + options.endpoints[i] + path + " failed (" + why[i] + "); trying " +
                      (n > 1 ? options.endpoints[(i + 1) % n] : "it again"));
        }
      }
    }
    std::string message = "etcd unreachable at ";
    for (size_t i = 0; i < n; ++i) {
      message += (i ? ", " : "") + options.endpoints[i] + " (" + why[i] + ")";
    }
    message += " after " + std::to_string(std::max(1, options.rounds)) + " rounds";
    return Status::FromErrno(last.posix_errno() == EAGAIN ? EAGAIN : EHOSTUNREACH, message);
  }
};

Status EtcdClient::Watch(const std::string& prefix,
                         const std::function<void(const EtcdKeyValue*)>& on_put,
                         const std::function<bool()>& stopped) {
  const EtcdClientOptions& o = impl_->options;
  const size_t n = o.endpoints.size();
  int64_t next = 0;  // the revision to go on from; 0: now
  int backoff = o.backoff_ms;
  size_t i;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    i = impl_->current;
  }
  while (!stopped()) {
    json create = {{"key", Base64Encode(prefix)}, {"range_end", Base64Encode(PrefixEnd(prefix))}};
    if (next > 0) create["start_revision"] = std::to_string(next);
    const std::string body = json{{"create_request", create}}.dump();
    std::string problem;
    WatchStream w;
    w.stopped = stopped;
    w.line = [&](const std::string& line) {
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) return;
      if (j.contains("error")) {
        problem = j["error"].is_object() ? j["error"].value("message", "?") : line.substr(0, 200);
        return;
      }
      const json& r = j.value("result", json::object());
      if (r.contains("compact_revision") && r.value("canceled", false)) {
        // The revisions we needed are gone: start again from now.
        next = 0;
        on_put(nullptr);
        return;
      }
      for (const json& e : r.value("events", json::array())) {
        if (e.value("type", std::string("PUT")) != "PUT" || !e.contains("kv")) continue;
        EtcdKeyValue kv;
        if (!DecodeKeyValue(e["kv"], &kv).ok()) continue;
        next = std::max(next, kv.mod_revision + 1);
        on_put(&kv);
      }
      // A watch from now starts after the revision its creation reports.
      if (next == 0 && r.value("created", false) && r.contains("header")) {
        next = Int(r["header"], "revision") + 1;
      }
    };
    CURL* h = curl_easy_init();
    if (h == nullptr) return Status::FromErrno(ENOMEM, "curl_easy_init failed");
    char error[CURL_ERROR_SIZE] = "";
    const std::string url = o.endpoints[i] + "/v3/watch";
    curl_slist* headers = SetUpPost(h, url, body, error, o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WatchData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, WatchProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    const CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (stopped()) break;
    if (problem.empty()) {
      problem =
          rc != CURLE_OK ? (error[0] != '\0' ? error : curl_easy_strerror(rc)) : "the stream ended";
    }
    const size_t to = (i + 1) % n;
    if (o.log) {
      o.log("etcd: watch of " + prefix + " at " + o.endpoints[i] + " failed (" + problem +
            "); going on at " + o.endpoints[to]);
    }
    i = to;
    // Wait before the next attempt, still answering `stopped`.
    for (int waited = 0; waited < backoff && !stopped(); waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, 5000);
  }
  return Status::OK();
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

Status EtcdClient::Open(const EtcdClientOptions& options, std::unique_ptr<EtcdClient>* out) {
  if (options.endpoints.empty()) return Status::InvalidArgument("etcd: no endpoint");
  for (const std::string& e : options.endpoints) {
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
      return Status::InvalidArgument("etcd endpoint '" + e + "' is not http://HOST:PORT");
    }
  }
  if (options.request_timeout_ms <= 0 || options.connect_timeout_ms <= 0) {
    return Status::InvalidArgument("etcd: timeouts must be positive");
  }
  GlobalInit();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  out->reset(new EtcdClient(std::move(impl)));
  return Status::OK();
}

Status EtcdClient::Get(const std::string& key, EtcdKeyValue* out) {
  json reply;
  KVFS_RETURN_IF_ERROR(impl_->Call("/v3/kv/range", {{"key", Base64Encode(key)}}, &reply));
  if (!reply.contains("kvs") || reply["kvs"].empty()) {
    return Status::NotFound("etcd: no key '" + key + "'");
  }
  return DecodeKeyValue(reply["kvs"][0], out);
}

Status EtcdClient::List(const std::string& prefix, int64_t limit, bool descending,
                        std::vector<EtcdKeyValue>* out) {
  out->clear();
  // Without a limit, pages of kListPage keys (ascending: from the key after
  // the last one; descending: up to the last one), so that no answer grows
  // beyond what one request may return.
  constexpr int64_t kListPage = 1000;
  const std::string end = PrefixEnd(prefix);
  std::string from = prefix, to = end;
  for (;;) {
    const int64_t page = limit != 0 ? limit : kListPage;
    json request = {{"key", Base64Encode(from)},
                    {"range_end", Base64Encode(to)},
                    {"limit", std::to_string(page)},
                    {"sort_target", "KEY"},
                    {"sort_order", descending ? "DESCEND" : "ASCEND"}};
    json reply;
    KVFS_RETURN_IF_ERROR(impl_->Call("/v3/kv/range", request, &reply));
    if (!reply.contains("kvs")) return Status::OK();
    size_t got = 0;
    for (const json& kv : reply["kvs"]) {
      EtcdKeyValue v;
      KVFS_RETURN_IF_ERROR(DecodeKeyValue(kv, &v));
      out->push_back(std::move(v));
      ++got;
    }
    if (limit != 0 || got < size_t(page) || !reply.value("more", false)) return Status::OK();
    if (descending) {
      to = out->back().key;  // range_end is exclusive
    } else {
      from = out->back().key + std::string(1, '\0');
    }
  }
}

Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  json request = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) request["lease"] = std::to_string(lease);
  json reply;
  return impl_->Call("/v3/kv/put", request, &reply);
}

Status EtcdClient::CreateIfAbsent(const std::string& key, const std::string& value, int64_t lease,
                                  bool* created, EtcdKeyValue* existing) {
  const std::string k = Base64Encode(key);
  json put = {{"key", k}, {"value", Base64Encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  json request = {
      {"compare", json::array({{{"key", k}, {"target", "CREATE"}, {"create_revision", "0"}}})},
      {"success", json::array({{{"request_put", put}}})},
      {"failure", json::array({{{"request_range", {{"key", k}}}}})}};
  json reply;
  KVFS_RETURN_IF_ERROR(impl_->Call("/v3/kv/txn", request, &reply));
  *created = reply.value("succeeded", false);
  if (*created || existing == nullptr) return Status::OK();
  // The failure branch's range: the key's holder (it may have been deleted
  // in between; then it is reported empty).
  *existing = EtcdKeyValue();
  if (reply.contains("responses")) {
    for (const json& r : reply["responses"]) {
      if (r.contains("response_range") && r["response_range"].contains("kvs") &&
          !r["response_range"]["kvs"].empty()) {
        return DecodeKeyValue(r["response_range"]["kvs"][0], existing);
      }
    }
  }
  existing->key = key;
  return Status::OK();
}

Status EtcdClient::CreateAllIfAbsent(const std::vector<std::pair<std::string, std::string>>& kvs,
                                     bool* created) {
  json compare = json::array(), success = json::array();
  for (const auto& [key, value] : kvs) {
    const std::string k = Base64Encode(key);
    compare.push_back({{"key", k}, {"target", "CREATE"}, {"create_revision", "0"}});
    success.push_back({{"request_put", {{"key", k}, {"value", Base64Encode(value)}}}});
  }
  json request = {{"compare", compare}, {"success", success}};
  json reply;
  KVFS_RETURN_IF_ERROR(impl_->Call("/v3/kv/txn", request, &reply));
  *created = reply.value("succeeded", false);
  return Status::OK();
}

Status EtcdClient::Delete(const std::string& key, int64_t* deleted) {
  json reply;
  KVFS_RETURN_IF_ERROR(impl_->Call("/v3/kv/deleterange", {{"key", Base64Encode(key)}}, &reply));
  if (deleted != nullptr) *deleted = Int(reply, "deleted");
  return Status::OK();
}

Status EtcdClient::LeaseGrant(int64_t ttl_seconds, int64_t* id, int64_t* granted_ttl) {
  if (ttl_seconds <= 0) return Status::InvalidArgument("etcd: a lease needs a positive TTL");
  json reply;
  KVFS_RETURN_IF_ERROR(
      impl_->Call("/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}}, &reply));
  *id = Int(reply, "ID");
  if (*id == 0) return Status::IOError("etcd: lease grant answered without an ID");
  if (granted_ttl != nullptr) *granted_ttl = Int(reply, "TTL");
  return Status::OK();
}

Status EtcdClient::LeaseKeepAlive(int64_t id, int64_t* ttl) {
  json reply;
  KVFS_RETURN_IF_ERROR(impl_->Call("/v3/lease/keepalive", {{"ID", std::to_string(id)}}, &reply));
  // A stream: {"result": {...}}. A lease that is gone answers TTL 0 (absent).
  const json& r = reply.contains("result") ? reply["result"] : reply;
  const int64_t left = Int(r, "TTL");
  if (left <= 0) {
    return Status::NotFound("etcd: lease " + std::to_string(id) + " has expired or was revoked");
  }
  if (ttl != nullptr) *ttl = left;
  return Status::OK();
}

Status EtcdClient::LeaseRevoke(int64_t id) {
  json reply;
  return impl_->Call("/v3/lease/revoke", {{"ID", std::to_string(id)}}, &reply);
}

std::string EtcdClient::Describe() const {
  std::string s;
  for (const std::string& e : impl_->options.endpoints) s += (s.empty() ? "" : ",") + e;
  return s;
}

Status ParseEtcdEndpoints(const std::string& hosts, std::vector<std::string>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= hosts.size()) {
    const size_t comma = std::min(hosts.find(',', pos), hosts.size());
    std::string host = hosts.substr(pos, comma - pos);
    if (host.empty()) return Status::InvalidArgument("etcd: empty host in '" + hosts + "'");
    const size_t colon = host.rfind(':');
    if (colon == std::string::npos || host.back() == ']') {
      host += ":2379";
    } else {
      const std::string port = host.substr(colon + 1);
      if (port.empty() || port.size() > 5 ||
          !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          std::stoi(port) == 0 || std::stoi(port) > 65535) {
        return Status::InvalidArgument("etcd: bad port in '" + host + "'");
      }
    }
    out->push_back("http://" + host);
    pos = comma + 1;
  }
  return Status::OK();
}

}  // namespace kvfs::coord
