// What kvfs-ingest, kvfs-export and kvfs-evict share: argument parsing and
// running their requests (through the server or directly, RunRequest) with
// one line of output per request.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "ingest/service.h"

namespace kvfs::ingest {

struct CommandLine {
  std::map<std::string, std::string> options;  // "--x" -> value ("1" for flags)
  std::vector<std::string> args;
};

// Parses argv[1..]: "--name value" or "--name=value" for names in `valued`
// and for the options every command takes (--db, --backend, --kv-options,
// and the persistent store settings --s3-endpoint etc.: kStoreUsage),
// "--name" for names in `flags` (stored as "1"), anything else is an
// argument ("--" ends the options). EINVAL for an unknown option or a
// missing value.
Status ParseCommandLine(int argc, char** argv, const std::set<std::string>& flags,
                        const std::set<std::string>& valued, CommandLine* out);

// The usage lines of the store options, printed by UsageError after the
// command's own usage.
inline constexpr const char* kStoreUsage = R"(
store options (every command):
  --db PATH             the KVFS store (required)
  --backend NAME        its key/value backend (default: the one recorded in
                        PATH, rocksdb for a new store; see docs/kv-stores.md)
  --kv-options LIST     the backend's options, name=value,... (used when the
                        store is opened here, not through a server)

persistent store (--store, --claims: a directory, file:///DIR or
s3://BUCKET[/PREFIX]; docs/stores.md):
  --s3-endpoint URL     the S3 server, http(s)://HOST[:PORT] or HOST[:PORT]
                        (default: AWS, https://s3.REGION.amazonaws.com)
  --s3-region NAME      the region requests are signed for (us-east-1)
  --s3-addressing path|virtual   BUCKET in the path or in the host name
                        (default: virtual for AWS, path for --s3-endpoint)
  --s3-tls on|off       HTTPS for an endpoint given without a scheme (on)
  --s3-ca-file FILE     CA certificates to verify the server with
  --s3-profile NAME     take the credentials from this profile of
                        ~/.aws/credentials
  --s3-part-size N      multipart upload part size (16M; 5M to 5G)
  --s3-retries N        retries of a failed request (10)
  --s3-timeout-seconds N  a request without progress for N s fails (60)
  --s3-stale-upload-seconds N  abort unfinished uploads older than N s
                        when the store is opened (86400; 0: never)
  Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
  else ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE). Through
  a server, the server opens the store with its own credentials.
)";

// Runs each request against the store given by the store options of `cl`
// in turn and prints one line per request (stdout on success, stderr with
// the error otherwise). Returns the exit status: 0 if every request
// succeeded, 2 otherwise (also for bad store options).
int RunRequests(const CommandLine& cl, const std::vector<Message>& requests);

// Prints `usage`, kStoreUsage and `error` (if any) to stderr; returns exit
// status 2.
int UsageError(const char* usage, const std::string& error);

}  // namespace kvfs::ingest
