#include "server/server_stack.h"

#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "cache/cache_commands.h"
#include "cache/tree_cache.h"
#include "common/kv/kv_backend.h"
#include "common/kv/kv_store.h"
#include "coord/coordination.h"
#include "ingest/control_client.h"
#include "ingest/control_server.h"
#include "ingest/persistent_store.h"
#include "metrics/metered_file_system.h"
#include "metrics/metered_store.h"
#include "metrics/metrics.h"
#include "store/store.h"

namespace kvfs::server {

// Forwards the cache manager's invalidations to the control server's
// listeners, while there is a control server.
struct ServerStack::Relay {
  std::mutex mu;
  ingest::ControlServer* target = nullptr;  // guarded by mu

  void Invalidate(Ino ino) {
    std::lock_guard<std::mutex> l(mu);
    if (target != nullptr) target->Invalidate({ino});
  }
  void SetTarget(ingest::ControlServer* t) {
    std::lock_guard<std::mutex> l(mu);
    target = t;
  }
};

namespace {

cache::TreeCacheOptions CacheOptions(const ServerStackOptions& options,
                                     const std::string& db_path) {
  cache::TreeCacheOptions o;
  o.quota_bytes = options.cache_quota_bytes;
  o.quota_inodes = options.cache_quota_inodes;
  o.refresh_seconds = options.cache_refresh_seconds;
  o.writeback_delay_seconds = options.cache_writeback_delay_seconds;
  o.retry_seconds = options.cache_retry_seconds;
  o.staging_dir = ingest::StagingDirFor(db_path);
  o.owner = ingest::DefaultClaimOwner();
  o.log = options.log;
  return o;
}

}  // namespace

Status ResolveSubtree(FileSystem* fs, std::string_view path, bool create, Attributes* out) {
  if (path.empty() || path[0] != '/') {
    return Status::InvalidArgument("path '" + std::string(path) + "' is not absolute");
  }
  Attributes cur;
  KVFS_RETURN_IF_ERROR(fs->GetAttr(kRootIno, &cur));
  std::string_view rest = path;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (cur.type != FileType::kDirectory) {
      return Status::FromErrno(ENOTDIR, std::string(path) + ": a component is not a directory");
    }
    Attributes next;
    Status s = fs->Lookup(cur.ino, part, &next);
    if (s.IsNotFound() && create && part != "..") {
      NewObject obj;
      obj.mode = 0755;
      s = fs->Mkdir(cur.ino, part, obj, &next);
      if (s.posix_errno() == EEXIST) s = fs->Lookup(cur.ino, part, &next);
    }
    KVFS_RETURN_IF_ERROR(s);
    cur = next;
  }
  *out = cur;
  return Status::OK();
}

Status CanonicalDbPath(const std::string& db_path, std::string* out) {
  if (db_path.empty() || db_path[0] != '/') {
    return Status::InvalidArgument("database path '" + db_path + "' is not an absolute path");
  }
  namespace stdfs = std::filesystem;
  std::error_code ec;
  stdfs::create_directories(db_path, ec);
  if (ec) {
    return Status::FromErrno(ec.value(),
                             "cannot create database directory " + db_path + ": " + ec.message());
  }
  std::string path = stdfs::canonical(db_path, ec).string();
  if (ec) {
    return Status::FromErrno(ec.value(),
                             "cannot resolve database path " + db_path + ": " + ec.message());
  }
  if (!stdfs::is_directory(path, ec)) {
    return Status::FromErrno(ENOTDIR, "database path " + path + " is not a directory");
  }
  *out = std::move(path);
  return Status::OK();
}

ServerStack::ServerStack()
    : relay_(std::make_unique<Relay>()),
      progress_(std::make_unique<progress::ProgressRegistry>()) {}

ServerStack::~ServerStack() {
  // The cache manager's thread may be invalidating: detach it first; then
  // stop the control server (it may be running a request on fs_), then fs_.
  relay_->SetTarget(nullptr);
  control_.reset();
  // No scrape may read the key/value store's statistics while it closes.
  if (metrics_ != nullptr) metrics_->SetKVStore(nullptr);
  fs_.reset();
  metrics_.reset();
}

int ServerStack::metrics_port() const { return metrics_ != nullptr ? metrics_->port() : 0; }

Status ServerStack::Open(const ServerStackOptions& options, std::unique_ptr<ServerStack>* out) {
  // Settings first: a bad one opens nothing.
  KVFS_RETURN_IF_ERROR(coord::CheckLeaseSeconds(options.coordination_lease_seconds));
  std::unique_ptr<ServerStack> stack(new ServerStack());
  KVFS_RETURN_IF_ERROR(CanonicalDbPath(options.db_path, &stack->db_path_));
  const std::string& path = stack->db_path_;

  KVStoreSpec spec;
  KVFS_RETURN_IF_ERROR(ParseKVStoreSpec(path, options.kv_backend, options.kv_options, &spec));
  std::unique_ptr<KVStore> store;
  Status opened = OpenKVStore(spec, &store);
  if (!opened.ok()) {
    // Most often: another process has it open. Say which kind, if it serves.
    const std::string socket = ingest::ControlSocketPath(path);
    ingest::Message ping = {{"op", "ping"}}, pong;
    if (ingest::CallControlServer(socket, ping, &pong).ok()) {
      return Status::FromErrno(
          EBUSY, opened.message() + " (the store is in use: another process serves it on " +
                     socket +
                     ", a kvfs-fuse mount or an NFS server; stop it first, or reach the store "
                     "through it with kvfs-ingest and kvfs cache)");
    }
    return opened;
  }
  KVFS_RETURN_IF_ERROR(FileSystem::Open(FileSystemOptions(), std::move(store), &stack->fs_));
  metrics::Metrics* metrics = nullptr;
  if (!options.metrics_listen.empty()) {
    KVFS_RETURN_IF_ERROR(metrics::Metrics::Start(options.metrics_listen, &stack->metrics_));
    metrics = stack->metrics_.get();
  }

  if (!options.coordination.empty() && options.persistent_store.empty()) {
    return Status::InvalidArgument(
        "coordination " + options.coordination +
        " needs a persistent store (it coordinates servers sharing one)");
  }
  if (!options.persistent_store.empty()) {
    cache::TreeCacheOptions o = CacheOptions(options, path);
    if (!options.cache_compression.empty() &&
        !ingest::ParseCompression(options.cache_compression, &o.compression)) {
      return Status::InvalidArgument("unknown cache_compression '" + options.cache_compression +
                                     "'");
    }
    o.progress = stack->progress_.get();
    Relay* relay = stack->relay_.get();
    o.invalidate = [relay](Ino ino) { relay->Invalidate(ino); };
    if (metrics != nullptr) {
      o.observe = [metrics](const cache::CacheEvent& e) { metrics->RecordCacheEvent(e); };
    }
    std::error_code ec;
    std::filesystem::create_directories(o.staging_dir, ec);
    if (ec) {
      return Status::FromErrno(ec.value(), "cannot create " + o.staging_dir + ": " + ec.message());
    }
    store::StoreSpec spec;
    spec.url = options.persistent_store;
    spec.options = options.store_options;
    spec.log = options.log;
    std::unique_ptr<ingest::PersistentStore> persistent;
    KVFS_RETURN_IF_ERROR(store::OpenStore(spec, &persistent));
    if (metrics != nullptr) persistent = metrics::NewMeteredStore(std::move(persistent), metrics);
    if (!options.coordination.empty()) {
      coord::CoordinationOptions co;
      co.log = options.log;
      co.lease_seconds = options.coordination_lease_seconds;
      std::unique_ptr<coord::Coordination> coordination;
      KVFS_RETURN_IF_ERROR(
          coord::OpenCoordination(options.coordination, persistent.get(), co, &coordination));
      o.coordination = std::move(coordination);
    }
    std::unique_ptr<cache::TreeCache> cache;
    KVFS_RETURN_IF_ERROR(
        cache::TreeCache::Open(std::move(stack->fs_), std::move(persistent), o, &cache));
    stack->cache_ = cache.get();
    stack->fs_ = std::move(cache);
  }
  if (metrics != nullptr)
    stack->fs_ = metrics::NewMeteredFileSystem(std::move(stack->fs_), metrics);

  Status s = ingest::StartStoreControlServer(stack->fs_.get(), path, &stack->control_, options.log,
                                             options.coordination, stack->progress_.get());
  if (!s.ok()) {
    stack->control_error_ = s.ToString();
  } else if (stack->cache_ != nullptr) {
    cache::TreeCache* cache = stack->cache_;
    stack->control_->SetRequestHandler(
        [cache](const ingest::Message& request, ingest::Message* response) {
          return cache::ExecuteCacheRequest(cache, request, response);
        });
    stack->relay_->SetTarget(stack->control_.get());
  }
  // Last: from here on the key/value store lives as long as the stack.
  if (metrics != nullptr) metrics->SetKVStore(stack->fs_->store());
  *out = std::move(stack);
  return Status::OK();
}

Status ServerStack::AddInvalidateListener(const void* key, std::function<void(Ino)> listener) {
  if (control_ == nullptr)
    return Status::FromErrno(ENOTCONN, "no control socket: " + control_error_);
  control_->AddInvalidateListener(key, std::move(listener));
  return Status::OK();
}

void ServerStack::RemoveInvalidateListener(const void* key) {
  if (control_ != nullptr) control_->RemoveInvalidateListener(key);
}

}  // namespace kvfs::server
