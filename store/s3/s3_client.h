// S3Client: HTTP requests to one bucket of an S3 server, signed with AWS
// Signature Version 4 by libcurl (CURLOPT_AWS_SIGV4), with S3's errors
// turned into Statuses and retries of what is worth retrying.
//
// Only what the S3 store (s3_store.h) needs: a request is a method, an
// object key, query parameters, headers and an in-memory body; the
// response body is collected or streamed to a callback. Connections are
// kept alive and reused (a pool of curl handles). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/s3/credentials.h"

namespace kvfs::store::s3 {

struct S3ClientOptions {
  // scheme://host[:port] of the server, without a path.
  std::string endpoint;
  // The region requests are signed for.
  std::string region = "us-east-1";
  // Virtual-host addressing (https://BUCKET.host/KEY) instead of path-style
  // (https://host/BUCKET/KEY).
  bool virtual_host = false;
  std::string bucket;
  // CA certificates for TLS ("" : the system's).
  std::string ca_file;
  Credentials credentials;
  // Retries of a retryable failure (Perform), with capped exponential
  // backoff: backoff_ms, doubling, at most max_backoff_ms, each with jitter.
  int retries = 10;
  int backoff_ms = 100;
  int max_backoff_ms = 5000;
  // An attempt that moves no byte for this long fails (retryably). Time the
  // caller spends in its body callback does not count.
  int timeout_seconds = 60;
  int connect_timeout_seconds = 10;
  // Receives one line per retry; may be called from any thread.
  std::function<void(const std::string&)> log;
};

struct S3Request {
  // "GET", "HEAD", "PUT", "POST" or "DELETE".
  std::string method = "GET";
  // The object's key ("" : the bucket itself).
  std::string key;
  // Query parameters, not encoded (the client sorts and encodes them as
  // SigV4 requires).
  std::vector<std::pair<std::string, std::string>> query;
  // Extra headers, "Name: value" (all are signed).
  std::vector<std::string> headers;
  // The body sent with PUT and POST (not copied: it must outlive the call).
  std::string_view body;
  // "FIRST-LAST" (bytes, inclusive) for a ranged GET; "" for all.
  std::string range;
  // If set, receives the body of a successful (2xx) response as it arrives
  // instead of S3Response::body; returning false stops the transfer (the
  // attempt then fails with ECANCELED and is not retried).
  std::function<bool(std::string_view)> on_body;
  // If set, asked about once a second while the request waits for the
  // server; true stops it as on_body's false does.
  std::function<bool()> cancelled;
};

struct S3Response {
  // The HTTP status of the last attempt (0: no response).
  long status = 0;
  // Its headers, names in lower case.
  std::map<std::string, std::string> headers;
  // Its body (unless streamed to on_body), at most 1 MiB of an error.
  std::string body;
  // S3's error code and request id of a failed attempt ("" if none).
  std::string error_code;
  std::string request_id;
  // Whether the last attempt's failure is worth retrying: timeouts,
  // refused or broken connections, 5xx (503 SlowDown too), 429 and
  // RequestTimeout; never another 4xx.
  bool retryable = false;
  // Attempts made.
  int attempts = 0;
};

class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Makes one attempt at `request`. OK for a 2xx response; otherwise an
  // error whose message names the bucket and key, the method, the HTTP
  // status, S3's error code, message and request id (or the transport
  // error): ENOENT (404), EACCES (403), EINVAL (400, 416), EEXIST (412),
  // EBUSY (409), ENOTSUP (501), ETIMEDOUT, ECONNREFUSED, ECANCELED (stopped
  // by on_body) or EIO. *response is filled either way.
  Status Attempt(const S3Request& request, S3Response* response);

  // Attempt, retried while the failure is retryable and retries remain,
  // waiting Backoff(n) before retry n. The request must be repeatable (a
  // streaming caller that wants to resume where a transfer stopped uses
  // Attempt and Backoff itself). A final error says how many attempts
  // were made.
  Status Perform(const S3Request& request, S3Response* response);

  // How long to wait before retry `n` (1, 2, ...): min(max_backoff_ms,
  // backoff_ms * 2^(n-1)), scaled by a random factor in [0.5, 1].
  std::chrono::milliseconds BackoffDelay(int n) const;
  // Sleeps BackoffDelay(n).
  void Backoff(int n) const;

  // Logs a line (options.log).
  void Log(const std::string& line) const;

  // "s3://BUCKET/KEY", for messages.
  std::string Describe(std::string_view key) const;

  const S3ClientOptions& options() const { return options_; }

 private:
  void* AcquireHandle();
  void ReleaseHandle(void* handle);
  std::string UrlOf(const S3Request& request) const;

  const S3ClientOptions options_;
  const std::string signing_;  // "aws:amz:REGION:s3"
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* handles, guarded by mu_
};

// Percent-encodes every byte but A-Za-z0-9-_.~ (and '/' if keep_slash), as
// SigV4 wants paths and query strings encoded.
std::string UriEncode(std::string_view s, bool keep_slash);
// Decodes %XX escapes (and '+' as a space when plus_is_space).
std::string UriDecode(std::string_view s, bool plus_is_space);

}  // namespace kvfs::store::s3
