// EtcdClient: the few etcd v3 operations KVFS coordinates servers with, over
// etcd's JSON gateway (HTTP POST /v3/..., keys and values base64) with
// libcurl and nlohmann-json (docs/coordination.md).
//
// A client is given the client URLs of a cluster's members. Each request goes
// to the member that answered last; when a member cannot be reached, times
// out or answers that it has no leader, the request goes to the next one, for
// `rounds` passes over all of them with a backoff between passes. When none
// answers, the error (EHOSTUNREACH) names every endpoint and what each said.
// An answer of etcd itself (a lease that does not exist, a request too
// large) is returned at once, with etcd's message.
//
// A request retried on another member after a timeout may have been applied
// by the first: Put, Delete and lease operations are idempotent, and
// CreateIfAbsent lets the caller recognise its own earlier write (the
// existing value it returns is the caller's own value).
//
// All methods are thread-safe; connections are kept alive and reused.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kvfs::coord {

struct EtcdClientOptions {
  // Client URLs of the members, "http://host:port" (at least one).
  std::vector<std::string> endpoints;
  // One attempt on one member fails after this long (connecting included).
  int request_timeout_ms = 5000;
  int connect_timeout_ms = 1000;
  // Passes over every endpoint before a request fails, with backoff_ms
  // (doubling) between passes.
  int rounds = 3;
  int backoff_ms = 200;
  // Receives one line per failover to another member; any thread. Null:
  // nothing is logged.
  std::function<void(const std::string&)> log;
};

// One key as etcd stores it.
struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  // The lease the key is attached to (0: none).
  int64_t lease = 0;
};

class EtcdClient {
 public:
  // Checks the options (EINVAL naming a bad endpoint); connects to nothing.
  static Status Open(const EtcdClientOptions& options, std::unique_ptr<EtcdClient>* out);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The value of `key`; ENOENT if there is none.
  Status Get(const std::string& key, EtcdKeyValue* out);
  // Every key that starts with `prefix`, sorted by key (ascending, or
  // descending with `descending`), at most `limit` of them (0: all, read in
  // pages of 1,000 keys, so not at one revision).
  Status List(const std::string& prefix, int64_t limit, bool descending,
              std::vector<EtcdKeyValue>* out);
  // Sets `key` to `value`, attached to `lease` (0: none).
  Status Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // In one transaction: if `key` does not exist, sets it to `value` (attached
  // to `lease`, 0: none) and sets *created; otherwise leaves it and returns
  // what it holds in *existing (if not null).
  Status CreateIfAbsent(const std::string& key, const std::string& value, int64_t lease,
                        bool* created, EtcdKeyValue* existing);
  // In one transaction: if none of the keys exists, sets all of them (no
  // lease) and sets *created; otherwise changes nothing. At most 128 keys
  // (etcd's default --max-txn-ops).
  Status CreateAllIfAbsent(const std::vector<std::pair<std::string, std::string>>& kvs,
                           bool* created);
  // Deletes `key`; *deleted (if not null) is the number of keys deleted (0
  // or 1).
  Status Delete(const std::string& key, int64_t* deleted);

  // Grants a lease of `ttl_seconds`; *id is its id, *granted_ttl (if not
  // null) the TTL etcd granted.
  Status LeaseGrant(int64_t ttl_seconds, int64_t* id, int64_t* granted_ttl = nullptr);
  // Renews lease `id` for its whole TTL; *ttl (if not null) is the TTL left.
  // ENOENT if the lease no longer exists (expired or revoked): whatever was
  // attached to it is gone.
  Status LeaseKeepAlive(int64_t id, int64_t* ttl = nullptr);
  // Revokes lease `id`, deleting every key attached to it; ENOENT if it does
  // not exist.
  Status LeaseRevoke(int64_t id);

  // Watches the keys under `prefix` until `stopped()` is true (asked about
  // once a second): calls `on_put` with each key put there from now on, in
  // revision order, on this thread; with nullptr when events may have been
  // missed (etcd compacted the revisions the watch needed): read again what
  // matters. Streams from one member; when it fails (dies, closes) goes on
  // from the next revision on the next member, after a backoff (logged).
  // Returns OK once stopped.
  Status Watch(const std::string& prefix, const std::function<void(const EtcdKeyValue*)>& on_put,
               const std::function<bool()>& stopped);

  // The endpoints, comma-separated, for messages.
  std::string Describe() const;

 private:
  struct Impl;
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "host:port[,host:port...]" (an etcd:// URL's authority) into client
// URLs "http://host:port"; a missing port is 2379. EINVAL naming the bad
// part.
Status ParseEtcdEndpoints(const std::string& hosts, std::vector<std::string>* out);

}  // namespace kvfs::coord
