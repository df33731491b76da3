#include "store/s3/s3_client.h"

#include <curl/curl.h>
#include <pugixml.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

namespace kvfs::store::s3 {
namespace {

using Clock = std::chrono::steady_clock;

// The most of an error body kept (an error is a few hundred bytes).
constexpr size_t kMaxErrorBody = 1 << 20;
// curl's receive buffer: bigger than the default 16 KiB, so a fast stream
// costs fewer callbacks.
constexpr long kReceiveBuffer = 512 * 1024;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What one attempt keeps while curl runs it.
struct Transfer {
  const S3Request* request;
  S3Response* response;
  int timeout_seconds;
  Clock::time_point last_progress;
  curl_off_t last_down = -1, last_up = -1;
  bool timed_out = false;
  bool stopped = false;  // on_body said stop
};

size_t OnHeader(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  const size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (after a 100 Continue, the final one): start afresh.
    t->response->headers.clear();
    const size_t sp = line.find(' ');
    t->response->status = sp == std::string_view::npos ? 0 : std::atol(line.data() + sp + 1);
    return len;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    t->response->headers[Lower(std::string(line.substr(0, colon)))] = value;
  }
  return len;
}

size_t OnBody(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  const size_t len = size * n;
  const long status = t->response->status;
  if (t->request->on_body && status >= 200 && status < 300) {
    const bool go_on = t->request->on_body(std::string_view(data, len));
    t->last_progress = Clock::now();  // the caller's time is not the server's
    if (!go_on) {
      t->stopped = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    return len;
  }
  std::string& body = t->response->body;
  if (status >= 200 && status < 300) {
    body.append(data, len);
  } else if (body.size() < kMaxErrorBody) {
    body.append(data, std::min(len, kMaxErrorBody - body.size()));
  }
  return len;
}

int OnProgress(void* arg, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(arg);
  if (t->request->cancelled && t->request->cancelled()) {
    t->stopped = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  const Clock::time_point now = Clock::now();
  if (dlnow != t->last_down || ulnow != t->last_up) {
    t->last_down = dlnow;
    t->last_up = ulnow;
    t->last_progress = now;
    return 0;
  }
  if (now - t->last_progress > std::chrono::seconds(t->timeout_seconds)) {
    t->timed_out = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

// errno of an HTTP status that is an error.
int ErrnoOfStatus(long status) {
  switch (status) {
    case 400:
    case 416:
      return EINVAL;
    case 403:
      return EACCES;
    case 404:
      return ENOENT;
    case 409:
      return EBUSY;
    case 412:
      return EEXIST;
    case 501:
      return ENOTSUP;
    default:
      return EIO;
  }
}

// Fills error_code and request_id from an S3 <Error> body (or headers).
void ParseError(S3Response* r, std::string* message) {
  pugi::xml_document doc;
  if (!r->body.empty() && doc.load_buffer(r->body.data(), r->body.size())) {
    pugi::xml_node e = doc.child("Error");
    r->error_code = e.child_value("Code");
    *message = e.child_value("Message");
    r->request_id = e.child_value("RequestId");
  }
  if (r->request_id.empty()) {
    for (const char* h : {"x-amz-request-id", "x-trans-id", "x-openstack-request-id"}) {
      if (auto it = r->headers.find(h); it != r->headers.end()) {
        r->request_id = it->second;
        break;
      }
    }
  }
}

// 5xx but 501 (Not Implemented) and 505, 429 (Too Many Requests), and the
// 400 S3 sends for a request body that was too slow to come.
bool RetryableStatus(long status, const std::string& code) {
  return (status >= 500 && status != 501 && status != 505) || status == 429 ||
         code == "RequestTimeout" || code == "SlowDown";
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string UriDecode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

S3Client::S3Client(S3ClientOptions options)
    : options_(std::move(options)), signing_("aws:amz:" + options_.region + ":s3") {
  GlobalInit();
}

S3Client::~S3Client() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* S3Client::AcquireHandle() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Client::ReleaseHandle(void* handle) {
  // Reset keeps the handle's connections (and TLS sessions) for reuse.
  curl_easy_reset(static_cast<CURL*>(handle));
  std::lock_guard<std::mutex> l(mu_);
  idle_.push_back(handle);
}

std::string S3Client::UrlOf(const S3Request& request) const {
  std::string url = options_.endpoint;
  if (options_.virtual_host) {
    const size_t host = url.find("://") + 3;
    url.insert(host, options_.bucket + ".");
    url += "/";
  } else {
    url += "/" + options_.bucket + "/";
  }
  url += UriEncode(request.key, true);
  if (!request.query.empty()) {
    // SigV4 signs the query as written: sorted by name, every parameter as
    // name=value (also when empty), all but unreserved characters encoded.
    std::vector<std::pair<std::string, std::string>> q;
    for (const auto& [k, v] : request.query)
      q.emplace_back(UriEncode(k, false), UriEncode(v, false));
    std::sort(q.begin(), q.end());
    char sep = '?';
    for (const auto& [k, v] : q) {
      url += sep + k + "=" + v;
      sep = '&';
    }
  }
  return url;
}

std::string S3Client::Describe(std::string_view key) const {
  return "s3://" + options_.bucket + "/" + std::string(key);
}

void S3Client::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::chrono::milliseconds S3Client::BackoffDelay(int n) const {
  int64_t ms = options_.backoff_ms;
  for (int i = 1; i < n && ms < options_.max_backoff_ms; ++i) ms *= 2;
  ms = std::min<int64_t>(ms, options_.max_backoff_ms);
  thread_local std::minstd_rand rng(std::random_device{}());
  const double jitter = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng);
  return std::chrono::milliseconds(static_cast<int64_t>(ms * jitter));
}

void S3Client::Backoff(int n) const { std::this_thread::sleep_for(BackoffDelay(n)); }

Status S3Client::Attempt(const S3Request& request, S3Response* response) {
  *response = S3Response{};
  response->attempts = 1;
  CURL* h = static_cast<CURL*>(AcquireHandle());
  if (h == nullptr) return Status::FromErrno(ENOMEM, "curl_easy_init failed");
  Transfer t{&request, response, options_.timeout_seconds, Clock::now()};
  const std::string url = UrlOf(request);
  curl_slist* headers = nullptr;
  // curl signs with this as the payload hash and does not add it itself.
  headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  if (!options_.credentials.session_token.empty()) {
    headers = curl_slist_append(
        headers, ("x-amz-security-token: " + options_.credentials.session_token).c_str());
  }
  const bool has_body = request.method == "PUT" || request.method == "POST";
  if (has_body) headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  for (const std::string& hdr : request.headers) headers = curl_slist_append(headers, hdr.c_str());
  char curl_error[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, signing_.c_str());
  // Not CURLOPT_USERPWD: access keys may hold ':' (Swift's "account:user").
  curl_easy_setopt(h, CURLOPT_USERNAME, options_.credentials.access_key.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, options_.credentials.secret_key.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout_seconds));
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, kReceiveBuffer);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (has_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  if (!request.range.empty()) curl_easy_setopt(h, CURLOPT_RANGE, request.range.c_str());

  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  ReleaseHandle(h);

  const std::string what = Describe(request.key) + ": " + request.method;
  if (rc != CURLE_OK) {
    response->status = t.stopped ? response->status : 0;
    if (t.stopped) return Status::FromErrno(ECANCELED, what + ": stopped by its caller");
    int err = EIO;
    response->retryable = true;
    std::string why = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_COULDNT_CONNECT:
        err = ECONNREFUSED;
        break;
      case CURLE_OPERATION_TIMEDOUT:
        err = ETIMEDOUT;
        break;
      case CURLE_ABORTED_BY_CALLBACK:
        err = ETIMEDOUT;
        why = "no progress for " + std::to_string(options_.timeout_seconds) + " s";
        break;
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_GOT_NOTHING:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_PARTIAL_FILE:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        break;
      default:
        response->retryable = false;  // a certificate, a bad option...
        break;
    }
    return Status::FromErrno(err, what + ": " + why + " (" + options_.endpoint + ")");
  }
  if (response->status >= 200 && response->status < 300) return Status::OK();
  std::string message;
  ParseError(response, &message);
  response->retryable = RetryableStatus(response->status, response->error_code);
  std::string text = what + ": HTTP " + std::to_string(response->status);
  if (!response->error_code.empty()) text += " " + response->error_code;
  if (!message.empty()) text += ": " + message;
  if (!response->request_id.empty()) text += " (request id " + response->request_id + ")";
  return Status::FromErrno(ErrnoOfStatus(response->status), text);
}

Status S3Client::Perform(const S3Request& request, S3Response* response) {
  for (int attempt = 1;; ++attempt) {
    Status s = Attempt(request, response);
    response->attempts = attempt;
    if (s.ok() || !response->retryable) return s;
    if (attempt > options_.retries) {
      return Status::FromErrno(s.posix_errno(), s.message() + " (gave up after " +
                                                    std::to_string(attempt) + " attempts)");
    }
    Log(s.message() + "; retry " + std::to_string(attempt) + " of " +
        std::to_string(options_.retries));
    Backoff(attempt);
  }
}

}  // namespace kvfs::store::s3
