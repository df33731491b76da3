#include "cache/tree_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "cache/cache_record.h"
#include "common/fs/schema.h"
#include "common/fs/tree_lifecycle.h"
#include "ingest/ingest.h"

namespace kvfs::cache {

TreeCache::~TreeCache() = default;

std::string TransferIdOf(const std::string& tree) { return "tree:" + tree; }

namespace {

using Clock = std::chrono::steady_clock;
using ingest::ObjectInfo;

// Reports one load, eviction or write-back to TreeCacheOptions::observe
// when it goes out of scope: failed unless ok was set.
struct ObservedStep {
  ObservedStep(const TreeCacheOptions& options, CacheEvent::Kind kind)
      : observe(options.observe), start(Clock::now()) {
    event.kind = kind;
  }
  ~ObservedStep() {
    if (!observe) return;
    event.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    observe(event);
  }
  ObservedStep(const ObservedStep&) = delete;
  ObservedStep& operator=(const ObservedStep&) = delete;

  const std::function<void(const CacheEvent&)>& observe;
  const Clock::time_point start;
  CacheEvent event;
};

// Stubs created per batch by a refresh.
constexpr size_t kStubBatch = 1000;

// New versions recorded by other servers that are looked at one by one (a
// Stat each) before a listing is cheaper: a bucket lists 1,000 objects per
// request.
constexpr size_t kMaxQueuedVersions = 100;

enum class TreeStatus { kUnloaded, kLoading, kLoaded, kEvicting };

// One top-level directory the cache manages. Guarded by TreeCacheImpl::mu_.
struct Tree {
  std::string name;
  Ino top = 0;
  TreeStatus status = TreeStatus::kUnloaded;
  CacheRecord rec;
  uint32_t users = 0;  // operations in progress
  uint32_t opens = 0;  // OpenFile minus CloseFile
  // Mutations started and finished; a write-back clears the dirty mark only
  // if none started or was in progress while it ran.
  uint64_t started = 0;
  uint64_t finished = 0;
  bool writing = false;  // a write-back is running
  bool gone = false;     // removed from the cache
  Clock::time_point last_use{};
  int64_t last_use_wall = 0;
  Clock::time_point last_change{};
  Status load_error;
  Clock::time_point retry_after{};
  // The conflict tarball of its last write-back, if it had one.
  std::string conflict;
};

// What an operation needs of the tree its inode lies in.
enum class Access {
  kTop,       // the attributes of the top directory itself suffice
  kContents,  // anything inside: the tree must be loaded
  kMutation,  // a change: loaded, and marked dirty durably first
};

const char* StatusName(const Tree& t) {
  switch (t.status) {
    case TreeStatus::kUnloaded:
      return "unloaded";
    case TreeStatus::kLoading:
      return "loading";
    case TreeStatus::kEvicting:
      return "evicting";
    case TreeStatus::kLoaded:
      break;
  }
  return t.rec.dirty ? "dirty" : "clean";
}

int64_t WallNow() { return Now().sec; }

// Whether object a was written after object b.
bool Newer(const ObjectInfo& a, const ObjectInfo& b) {
  return std::make_pair(a.mtime_sec, a.mtime_nsec) > std::make_pair(b.mtime_sec, b.mtime_nsec);
}

// Whether an operation, an open file or a write-back holds t (then it is
// neither evicted nor removed).
bool InUse(const Tree& t) { return t.users > 0 || t.opens > 0 || t.writing; }

// Whether a listing may change t now (drop it, or move it to a new version):
// nothing holds it, it has no changes, and it is not loading or evicting.
// Reconcile passes every other tree by.
bool Idle(const Tree& t) {
  return !InUse(t) && !t.rec.dirty &&
         (t.status == TreeStatus::kUnloaded || t.status == TreeStatus::kLoaded);
}

// The cache manager's file system and its whole-tree operations (trees()).
class TreeCacheImpl final : public TreeCache, public TreeLifecycle {
 public:
  TreeCacheImpl(std::unique_ptr<FileSystem> base, std::unique_ptr<ingest::PersistentStore> store,
                TreeCacheOptions options)
      : base_(std::move(base)),
        base_trees_(base_->trees()),
        store_(std::move(store)),
        options_(std::move(options)),
        own_claims_(options_.coordination ? nullptr : coord::StoreClaims(store_.get())),
        claims_(options_.coordination ? options_.coordination.get() : own_claims_.get()),
        numbered_(claims_->NumbersTrees()),
        ownership_(claims_->OwnsTrees()) {}

  ~TreeCacheImpl() override {
    watch_.reset();  // no more refresh requests
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    bg_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Status Start() {
    KVFS_RETURN_IF_ERROR(Adopt());
    KVFS_RETURN_IF_ERROR(Refresh());
    // Nothing was cached by anyone before now; from here on changes are
    // announced. (An NFS server is still starting while its FSAL opens the
    // cache: an up-call then would reach an export Ganesha has not finished
    // setting up, and crashed ganesha.nfsd.)
    announce_.store(true);
    thread_ = std::thread([this] { Background(); });
    if (numbered_) {
      // Another server's new version of a tarball (its write-back): look at
      // that object now, which drops this server's copy of the old version,
      // instead of at the next periodic refresh (docs/coordination.md). If
      // events were missed, or so many queued up that one listing costs less
      // than their Stats, list the store instead.
      KVFS_RETURN_IF_ERROR(claims_->WatchVersions(
          [this](const std::string& object) {
            {
              std::lock_guard<std::mutex> l(mu_);
              if (object.empty() || new_versions_.size() >= kMaxQueuedVersions) {
                refresh_requested_ = true;
                new_versions_.clear();
              } else if (!refresh_requested_) {
                new_versions_.insert(object);
              }
            }
            bg_cv_.notify_all();
          },
          &watch_));
    }
    return Status::OK();
  }

  // ---- FileSystem ------------------------------------------------------------------

  Status Lookup(Ino parent, std::string_view name, Attributes* out) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kContents, &pin));
    return base_->Lookup(parent, name, out);
  }

  Status GetAttr(Ino ino, Attributes* out) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kTop, &pin));
    return base_->GetAttr(ino, out);
  }

  Status SetAttr(Ino ino, const SetAttrRequest& req, Attributes* out) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kMutation, &pin));
    return base_->SetAttr(ino, req, out);
  }

  Status Create(Ino parent, std::string_view name, const NewObject& obj, bool exclusive,
                Attributes* out) override {
    KVFS_RETURN_IF_ERROR(RefuseInRoot(parent, name));
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Create(parent, name, obj, exclusive, out);
  }

  Status Mkdir(Ino parent, std::string_view name, const NewObject& obj, Attributes* out) override {
    if (parent == kRootIno) return MkdirTop(name, obj, out);
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Mkdir(parent, name, obj, out);
  }

  Status Mknod(Ino parent, std::string_view name, FileType type, const NewObject& obj,
               uint64_t rdev, Attributes* out) override {
    KVFS_RETURN_IF_ERROR(RefuseInRoot(parent, name));
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Mknod(parent, name, type, obj, rdev, out);
  }

  Status Symlink(Ino parent, std::string_view name, std::string_view target, const NewObject& obj,
                 Attributes* out) override {
    KVFS_RETURN_IF_ERROR(RefuseInRoot(parent, name));
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Symlink(parent, name, target, obj, out);
  }

  Status Readlink(Ino ino, std::string* target) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kContents, &pin));
    return base_->Readlink(ino, target);
  }

  Status Link(Ino ino, Ino new_parent, std::string_view new_name, Attributes* out) override {
    KVFS_RETURN_IF_ERROR(RefuseInRoot(new_parent, new_name));
    Pin pin, parent_pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kMutation, &pin));
    KVFS_RETURN_IF_ERROR(Enter(new_parent, Access::kMutation, &parent_pin));
    return base_->Link(ino, new_parent, new_name, out);
  }

  Status Unlink(Ino parent, std::string_view name) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Unlink(parent, name);
  }

  Status Rmdir(Ino parent, std::string_view name) override {
    if (parent == kRootIno) return RmdirTop(name);
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    return base_->Rmdir(parent, name);
  }

  Status Rename(Ino parent, std::string_view name, Ino new_parent,
                std::string_view new_name) override {
    if (parent == kRootIno || new_parent == kRootIno) {
      return Status::FromErrno(EXDEV, "top-level trees are tarballs of the persistent store: '" +
                                          std::string(parent == kRootIno ? name : new_name) +
                                          "' cannot be renamed at the top (copy it instead)");
    }
    Pin pin, new_pin;
    KVFS_RETURN_IF_ERROR(Enter(parent, Access::kMutation, &pin));
    KVFS_RETURN_IF_ERROR(Enter(new_parent, Access::kMutation, &new_pin));
    return base_->Rename(parent, name, new_parent, new_name);
  }

  Status Read(Ino ino, uint64_t offset, size_t size, std::string* out, bool* eof) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kContents, &pin));
    return base_->Read(ino, offset, size, out, eof);
  }

  Status ReadStream(Ino ino, uint64_t offset, uint64_t length,
                    const std::function<Status(std::string_view)>& fn) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kContents, &pin));
    return base_->ReadStream(ino, offset, length, fn);
  }

  Status Write(Ino ino, uint64_t offset, std::string_view data, Stability stability,
               Attributes* out) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kMutation, &pin));
    return base_->Write(ino, offset, data, stability, out);
  }

  Status DataExtents(Ino ino, uint64_t offset,
                     const std::function<bool(uint64_t, uint64_t)>& fn) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kContents, &pin));
    return base_->DataExtents(ino, offset, fn);
  }

  Status Fsync(Ino ino) override { return base_->Fsync(ino); }
  Status Sync() override { return base_->Sync(); }

  Status OpenFile(Ino ino) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(ino, Access::kContents, &pin));
    KVFS_RETURN_IF_ERROR(base_->OpenFile(ino));
    std::lock_guard<std::mutex> l(mu_);
    if (pin.tree != nullptr) ++pin.tree->opens;
    return Status::OK();
  }

  Status CloseFile(Ino ino) override {
    Status s = base_->CloseFile(ino);
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_range_.find(schema::RangeOf(ino));
    if (s.ok() && it != by_range_.end() && it->second->opens > 0) {
      --it->second->opens;
      cv_.notify_all();
    }
    return s;
  }

  Status ReadDir(Ino dir, uint64_t cookie, const std::function<bool(const DirEntry&)>& fn,
                 bool* eof) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(dir, Access::kContents, &pin));
    return base_->ReadDir(dir, cookie, fn, eof);
  }

  Status CookieOf(Ino dir, std::string_view name, uint64_t* cookie) override {
    Pin pin;
    KVFS_RETURN_IF_ERROR(Enter(dir, Access::kContents, &pin));
    return base_->CookieOf(dir, name, cookie);
  }

  Status StatFs(StatFsInfo* out) override {
    KVFS_RETURN_IF_ERROR(base_->StatFs(out));
    if (options_.quota_bytes != 0) out->total_bytes = options_.quota_bytes;
    if (options_.quota_inodes != 0) out->total_inodes = options_.quota_inodes;
    return Status::OK();
  }

  KVStore* store() override { return base_->store(); }
  TreeLifecycle* trees() override { return this; }

  // ---- TreeLifecycle -----------------------------------------------------------------
  // Whole-tree operations come from the ingest service (kvfs-ingest and
  // kvfs-evict through the control socket): trees they add are adopted as
  // dirty (they are not in the persistent store yet), trees they drop are
  // forgotten.
  Status ReserveRange(uint64_t at_least, uint64_t* range) override {
    return base_trees_->ReserveRange(at_least, range);
  }
  Status PublishTree(const LoadedTree& tree, uint64_t* replaced_range) override {
    std::lock_guard<std::mutex> root(root_mu_);
    uint64_t replaced = 0;
    KVFS_RETURN_IF_ERROR(base_trees_->PublishTree(tree, &replaced));
    if (replaced_range != nullptr) *replaced_range = replaced;
    if (replaced != 0) Forget(replaced);
    Tree t;
    t.name = tree.name;
    t.top = schema::RangeOwnerIno(tree.range);
    t.status = TreeStatus::kLoaded;
    t.rec.dirty = true;
    t.last_change = Clock::now();
    std::lock_guard<std::mutex> l(mu_);
    Register(std::move(t));
    return WriteRecord(*by_range_[tree.range]);
  }
  Status AbandonRange(uint64_t range) override { return base_trees_->AbandonRange(range); }
  Status DropTree(std::string_view name, uint64_t* dropped_range) override {
    std::lock_guard<std::mutex> root(root_mu_);
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_name_.find(std::string(name));
      if (it != by_name_.end()) {
        const Tree& t = *it->second;
        if (t.rec.dirty || InUse(t) || t.status != TreeStatus::kLoaded) {
          return Status::FromErrno(EBUSY, "tree '" + t.name + "' is " + StatusName(t) +
                                              (t.users + t.opens > 0 ? " and in use" : "") +
                                              ": drop it with the cache commands");
        }
      }
    }
    uint64_t range = 0;
    KVFS_RETURN_IF_ERROR(base_trees_->DropTree(name, &range));
    if (dropped_range != nullptr) *dropped_range = range;
    Forget(range);
    return Status::OK();
  }
  Status AddStubs(const std::vector<StubTree>& stubs, std::vector<Ino>* inos) override {
    return base_trees_->AddStubs(stubs, inos);
  }
  Status BeginFill(Ino top, uint64_t* high_water) override {
    return base_trees_->BeginFill(top, high_water);
  }
  Status FinishFill(const LoadedTree& tree) override { return base_trees_->FinishFill(tree); }
  Status ResetToStub(Ino top) override { return base_trees_->ResetToStub(top); }
  Status ReadTreeState(Ino top, TreeState* out) override {
    return base_trees_->ReadTreeState(top, out);
  }

  // ---- Operator commands -------------------------------------------------------------

  Status ListPage(const std::string& after, size_t limit, std::vector<CachedTree>* out,
                  bool* more) override {
    out->clear();
    *more = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto it = by_name_.upper_bound(after); it != by_name_.end(); ++it) {
        if (out->size() == limit) {
          *more = true;
          break;
        }
        const auto& [name, t] = *it;
        CachedTree c;
        c.name = name;
        c.ino = t->top;
        c.state = StatusName(*t);
        c.last_use = t->last_use_wall;
        c.open_files = t->opens;
        c.in_use = t->users;
        c.object = t->rec.object;
        auto listed = listing_.find(name);
        if (c.object.empty() && listed != listing_.end()) c.object = listed->second.name;
        c.last_error = t->load_error.ok() ? "" : t->load_error.ToString();
        c.conflict = t->conflict;
        out->push_back(std::move(c));
      }
    }
    // Usage from the store, outside the lock.
    for (CachedTree& c : *out) {
      TreeState ts;
      if (base_trees_->ReadTreeState(c.ino, &ts).ok()) {
        c.bytes = ts.bytes;
        c.inodes = ts.inodes;
      }
      if (options_.progress != nullptr) {
        c.transferring = options_.progress->Find(TransferIdOf(c.name), &c.transfer);
      }
    }
    return Status::OK();
  }

  Status Load(const std::string& name) override {
    std::shared_ptr<Tree> t;
    KVFS_RETURN_IF_ERROR(FindTree(name, &t));
    Pin pin;
    return Enter(t->top, Access::kContents, &pin, /*retry_now=*/true);
  }

  Status Flush(const std::string& name, bool* written) override {
    std::shared_ptr<Tree> t;
    KVFS_RETURN_IF_ERROR(FindTree(name, &t));
    return WriteBack(t, written);
  }

  Status FlushAll() override {
    Status first;
    for (const std::shared_ptr<Tree>& t : Snapshot()) {
      bool written;
      Status s = WriteBack(t, &written);
      if (!s.ok() && first.ok()) first = s;
    }
    return first;
  }

  Status Drop(const std::string& name) override {
    std::shared_ptr<Tree> t;
    KVFS_RETURN_IF_ERROR(FindTree(name, &t));
    {
      std::lock_guard<std::mutex> l(mu_);
      if (t->status == TreeStatus::kUnloaded) return Status::OK();
    }
    return Evict(t);
  }

  Status Refresh() override;
  // Another server recorded a new version of tarball `object` (the watch):
  // looks at that one object (Stat) and brings its tree up to date, as a
  // listing would; lists the whole store if the object is gone. *busy: this
  // server still serves an older version than the one listed, because the
  // tree was in use or loading (try again later; a changed tree is written
  // back as a conflict instead). While that is so, a call asks the store
  // nothing: the tree's newer version is known already.
  Status RefreshObject(const std::string& object, bool* busy);
  // Whether this server is loading or evicting tree `name`, or serves it
  // clean at another version than the one listed (Reconcile passed it by:
  // it was in use). mu_ held.
  bool BehindLocked(const std::string& name) const;
  // Brings the trees up to date with `listing` (tree name -> its tarball):
  // every tree if `only` is null (a listing of the whole store), else only
  // tree `*only`, whose tarball `listing` then holds.
  Status Reconcile(std::map<std::string, ObjectInfo> listing, const std::string* only);
  // Calls fn(name, tree) for every tree, or only for tree `*only` if it
  // exists. With mu_ held.
  template <typename Fn>
  void ForEachTreeLocked(const std::string* only, Fn fn) {
    if (only == nullptr) {
      for (const auto& [name, t] : by_name_) fn(name, t);
    } else if (auto it = by_name_.find(*only); it != by_name_.end()) {
      fn(it->first, it->second);
    }
  }

  Status Quota(QuotaInfo* out) override {
    StatFsInfo fs;
    KVFS_RETURN_IF_ERROR(base_->StatFs(&fs));
    *out = QuotaInfo();
    out->quota_bytes = options_.quota_bytes;
    out->quota_inodes = options_.quota_inodes;
    out->used_bytes = fs.used_bytes;
    out->used_inodes = fs.used_inodes;
    std::lock_guard<std::mutex> l(mu_);
    out->trees = by_name_.size();
    for (const auto& [name, t] : by_name_) {
      if (t->status == TreeStatus::kLoaded) ++out->loaded;
      if (t->rec.dirty) ++out->dirty;
    }
    return Status::OK();
  }

  ingest::PersistentStore* persistent_store() override { return store_.get(); }
  FileSystem* base() override { return base_.get(); }

 private:
  // Holds a tree in use for one operation (see Enter).
  struct Pin {
    TreeCacheImpl* cache = nullptr;
    std::shared_ptr<Tree> tree;
    bool mutation = false;
    Pin() = default;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    ~Pin() {
      if (tree != nullptr) cache->Release(tree.get(), mutation);
    }
  };

  // Pins the tree `ino` lies in for one operation, loading it first unless
  // `access` is kTop and `ino` is the top itself; for a mutation marks it
  // dirty (durably) first. The root, and inodes of no managed tree, need
  // nothing.
  Status Enter(Ino ino, Access access, Pin* pin, bool retry_now = false);
  void Release(Tree* t, bool mutation);
  // Loads t (whose status the caller set to kLoading) and settles its
  // status; on success t is in use by the caller (users raised in the same
  // step, so nothing can evict it before the caller's operation runs).
  Status LoadAndSettle(const std::shared_ptr<Tree>& t);
  Status LoadTree(const std::shared_ptr<Tree>& t);
  // Evicts trees, least recently used first, until `bytes` and `inodes`
  // more fit under the quota; never `keep`.
  void MakeRoom(uint64_t bytes, uint64_t inodes, const Tree* keep);
  // Writes t back (if dirty) and resets it to a stub. EBUSY if in use.
  Status Evict(const std::shared_ptr<Tree>& t);
  // Writes t back if it is dirty.
  Status WriteBack(const std::shared_ptr<Tree>& t, bool* written);
  Status MkdirTop(std::string_view name, const NewObject& obj, Attributes* out);
  Status RmdirTop(std::string_view name);
  Status RefuseInRoot(Ino parent, std::string_view name) const {
    if (parent != kRootIno) return Status::OK();
    return Status::FromErrno(EPERM,
                             "only directories can be created at the top: each is a "
                             "tarball of the persistent store ('" +
                                 std::string(name) + "')");
  }

  // Looks for tree `name`'s tarball in the store now (any suffix; the newest
  // if several); false if there is none (or the store cannot say).
  bool FindTarball(const std::string& name, ObjectInfo* out) {
    std::vector<ObjectInfo> tarballs;
    if (!ingest::TarballsOf(store_.get(), name, &tarballs).ok() || tarballs.empty()) return false;
    *out = tarballs[0];
    for (const ObjectInfo& info : tarballs) {
      if (Newer(info, *out)) *out = info;
    }
    return true;
  }
  // Numbered mode: the inode ranges of tarball versions `infos`.
  Status VersionRanges(const std::vector<ObjectInfo>& infos, std::vector<uint64_t>* ranges) {
    std::vector<coord::TarballVersion> versions;
    for (const ObjectInfo& info : infos) versions.push_back({info.name, info.version});
    return claims_->VersionRanges(versions, options_.owner, ranges);
  }
  // Numbered mode: moves stub t (loading or evicting, so held by the
  // caller) into inode range `range`, its tarball version's: drops it and
  // adds it again there, so handles into the old range get ESTALE. If the
  // stub cannot be added again, the tree is forgotten (the next refresh
  // shows it again).
  Status Restub(const std::shared_ptr<Tree>& t, uint64_t range);
  // Numbered mode, after t was reset to a stub: moves it to the range of its
  // listed tarball version if that is another one.
  void RestubToListedVersion(const std::shared_ptr<Tree>& t);
  // "NAME.conflict-<server>-<UTC time>": where changes to tree `name` go
  // when its tarball changed under them.
  std::string ConflictName(const std::string& name) const {
    std::string server = options_.server_name;
    if (server.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "kvfs");
      server = host;
    }
    for (char& c : server) {
      if (c == '/' || c == ' ' || static_cast<unsigned char>(c) < 0x20) c = '_';
    }
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char when[32];
    std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &utc);
    return name + ".conflict-" + server + "-" + when;
  }
  // Reads the top-level directories of base_ and their records.
  Status Adopt();
  // Adds stubs for `names` (batches; one by one where a batch fails).
  void AddStubsFor(const std::vector<std::pair<std::string, ObjectInfo>>& names);
  void Background();
  void WriteBackDue();

  Status FindTree(const std::string& name, std::shared_ptr<Tree>* out) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return Status::NotFound("no tree '" + name + "'");
    *out = it->second;
    return Status::OK();
  }
  std::vector<std::shared_ptr<Tree>> Snapshot() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::shared_ptr<Tree>> v;
    for (const auto& [name, t] : by_name_) v.push_back(t);
    return v;
  }
  // Requires mu_.
  void Register(Tree t) {
    auto p = std::make_shared<Tree>(std::move(t));
    by_range_[schema::RangeOf(p->top)] = p;
    by_name_[p->name] = p;
  }
  // Forgets the tree of `range` and deletes its record.
  void Forget(uint64_t range) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_range_.find(range);
    if (it == by_range_.end()) return;
    it->second->gone = true;
    by_name_.erase(it->second->name);
    by_range_.erase(it);
    WriteBatch b;
    b.Delete(Column::kMeta, CacheRecordKey(range));
    WriteOptions wo;
    wo.sync = true;
    Status s = base_->store()->Write(wo, b);
    if (!s.ok())
      Log("cannot delete the cache record of range " + std::to_string(range) + ": " + s.ToString());
  }
  // Writes t's record durably. Requires mu_ (so records are written in the
  // order their states were decided).
  Status WriteRecord(const Tree& t) {
    WriteBatch b;
    b.Put(Column::kMeta, CacheRecordKey(schema::RangeOf(t.top)), EncodeCacheRecord(t.rec));
    WriteOptions wo;
    wo.sync = true;
    return base_->store()->Write(wo, b);
  }
  void Log(const std::string& line) {
    if (options_.log) {
      options_.log(line);
    } else {
      std::fprintf(stderr, "kvfs cache: %s\n", line.c_str());
    }
  }
  // Queues an invalidation for the background thread.
  void Invalidate(Ino ino) {
    if (!options_.invalidate || !announce_.load()) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      invalidations_.push_back(ino);
    }
    bg_cv_.notify_all();
  }

  const std::unique_ptr<FileSystem> base_;
  TreeLifecycle* const base_trees_;  // base_->trees()
  const std::unique_ptr<ingest::PersistentStore> store_;
  const TreeCacheOptions options_;
  // Name claims: options_.coordination, or the store's own claims.
  const std::unique_ptr<coord::Coordination> own_claims_;
  coord::Coordination* const claims_;
  // Tarball versions are numbered by the coordination (etcd): each stub and
  // each load lives in the inode range claimed for its tarball version, the
  // same on every server (docs/coordination.md).
  const bool numbered_;
  // Trees have owners (etcd): a server changes a tree only while it owns it
  // (EROFS elsewhere), and gives it up when it evicts it.
  const bool ownership_;

  // Serializes changes of the root's set of trees (mkdir/rmdir at the top,
  // refresh, published and dropped trees).
  std::mutex root_mu_;

  std::mutex mu_;
  std::condition_variable cv_;                            // a tree's status, users or opens changed
  std::map<uint64_t, std::shared_ptr<Tree>> by_range_;    // guarded by mu_
  std::map<std::string, std::shared_ptr<Tree>> by_name_;  // guarded by mu_
  // The persistent store's tarballs by tree name, as last listed.
  std::map<std::string, ObjectInfo> listing_;  // guarded by mu_
  std::vector<Ino> invalidations_;             // guarded by mu_
  bool stop_ = false;                          // guarded by mu_
  bool refresh_requested_ = false;             // guarded by mu_: by a watch event
  std::set<std::string> new_versions_;         // guarded by mu_: objects, by watch events
  std::atomic<bool> announce_{false};          // Invalidate() passes changes on
  std::condition_variable bg_cv_;
  std::thread thread_;
  std::unique_ptr<coord::VersionWatch> watch_;  // with numbered_: new versions
};

Status TreeCacheImpl::Enter(Ino ino, Access access, Pin* pin, bool retry_now) {
  const uint64_t range = schema::RangeOf(ino);
  if (range == 0) return Status::OK();
  if (access == Access::kMutation && ownership_) {
    // Changes only by the tree's owner (a request the first time).
    std::string name;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_range_.find(range);
      if (it != by_range_.end()) name = it->second->name;
    }
    if (!name.empty()) KVFS_RETURN_IF_ERROR(claims_->AcquireTree(name, options_.owner));
  }
  std::unique_lock<std::mutex> l(mu_);
  auto it = by_range_.find(range);
  if (it == by_range_.end()) return Status::OK();
  std::shared_ptr<Tree> t = it->second;
  const bool top_only = access == Access::kTop && ino == t->top;
  bool pinned = false;  // by our own load
  while (!pinned) {
    if (t->gone) return Status::OK();  // the core answers (ESTALE)
    if (t->status == TreeStatus::kLoading || t->status == TreeStatus::kEvicting) {
      cv_.wait(l);
      continue;
    }
    if (t->status == TreeStatus::kUnloaded && !top_only) {
      if (!t->load_error.ok() && !retry_now && Clock::now() < t->retry_after) {
        return t->load_error;
      }
      t->status = TreeStatus::kLoading;
      l.unlock();
      Status s = LoadAndSettle(t);
      l.lock();
      if (!s.ok()) return s;
      pinned = true;
      continue;
    }
    break;
  }
  if (!pinned) ++t->users;
  t->last_use = Clock::now();
  t->last_use_wall = WallNow();
  if (access == Access::kMutation) {
    if (!t->rec.dirty) {
      // Durable before the change runs: a crash after the change cannot
      // leave the tree clean (and droppable) with the change in it.
      t->rec.dirty = true;
      Status s = WriteRecord(*t);
      if (!s.ok()) {
        t->rec.dirty = false;
        --t->users;
        cv_.notify_all();
        return s;
      }
    }
    ++t->started;
    t->last_change = Clock::now();
  }
  pin->cache = this;
  pin->tree = t;
  pin->mutation = access == Access::kMutation;
  return Status::OK();
}

void TreeCacheImpl::Release(Tree* t, bool mutation) {
  std::lock_guard<std::mutex> l(mu_);
  --t->users;
  if (mutation) {
    ++t->finished;
    t->last_change = Clock::now();
  }
  cv_.notify_all();
}

Status TreeCacheImpl::LoadAndSettle(const std::shared_ptr<Tree>& t) {
  Status s = LoadTree(t);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok()) {
      t->status = TreeStatus::kLoaded;
      t->load_error = Status::OK();
      ++t->users;
      t->last_use = Clock::now();
    } else {
      t->status = TreeStatus::kUnloaded;
      t->load_error = s;
      t->retry_after = Clock::now() + std::chrono::seconds(options_.retry_seconds);
    }
    cv_.notify_all();
  }
  if (s.ok()) {
    Invalidate(t->top);
    MakeRoom(0, 0, t.get());
  } else {
    Log(s.ToString());
  }
  return s;
}

Status TreeCacheImpl::LoadTree(const std::shared_ptr<Tree>& t) {
  ObservedStep step(options_, CacheEvent::Kind::kLoad);
  std::string object;
  CacheRecord rec;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = listing_.find(t->name);
    object = it != listing_.end() ? it->second.name : t->rec.object;
    rec = t->rec;
  }
  auto fail = [&](const std::string& what, const Status& s) {
    return Status::IOError("loading tree '" + t->name + "'" +
                           (object.empty() ? "" : " from " + object) + " of " + store_->Describe() +
                           ": " + what + (s.ok() ? "" : ": " + s.ToString()));
  };
  if (object.empty()) {
    return fail(
        "the persistent store has no tarball for it (yet: a tree another server created "
        "appears once that server writes it back)",
        Status::OK());
  }
  ObjectInfo info;
  Status s = store_->Stat(object, &info);
  if (!s.ok()) return fail("cannot find the tarball", s);
  step.event.bytes = info.size;
  MakeRoom(rec.bytes != 0 ? rec.bytes : info.size, rec.inodes, t.get());
  ingest::IngestOptions io;
  io.name = t->name;
  // The same tarball as at the last load: the same inode numbers.
  io.fill_first_local =
      rec.object == info.name && rec.version == info.version ? rec.first_local : 0;
  if (numbered_) {
    // Into the range of this version, numbered from its start: the same
    // numbers as on every other server.
    std::vector<uint64_t> ranges;
    s = VersionRanges({info}, &ranges);
    if (!s.ok()) return fail("cannot number the tarball's version", s);
    if (ranges[0] != schema::RangeOf(t->top)) {
      s = Restub(t, ranges[0]);
      if (!s.ok()) return fail("cannot move the tree to the range of its tarball", s);
    }
    io.fill_first_local = 2;
  }
  io.fill_top = t->top;
  io.staging_dir = options_.staging_dir;
  io.hasher = options_.hasher;
  progress::ProgressRegistry::Registration tracked;
  if (options_.progress != nullptr) {
    tracked = options_.progress->Begin(TransferIdOf(t->name), "loading " + info.name, info.size);
    io.progress = tracked.get();
  }
  ingest::IngestStats stats;
  s = ingest::IngestFromStore(base_.get(), store_.get(), info.name, io, &stats);
  if (!s.ok()) return fail("cannot ingest the tarball", s);
  TreeState ts;
  s = base_trees_->ReadTreeState(t->top, &ts);
  if (!s.ok()) return fail("cannot read the loaded tree's usage", s);
  std::lock_guard<std::mutex> l(mu_);
  t->rec.object = info.name;
  t->rec.version = info.version;
  t->rec.first_local = stats.first_local;
  t->rec.bytes = ts.bytes;
  t->rec.inodes = ts.inodes;
  t->rec.dirty = false;
  listing_[t->name] = info;
  s = WriteRecord(*t);
  // The tree is loaded either way; without the record the next load after
  // an eviction numbers it afresh (handles go stale, nothing is lost).
  if (!s.ok()) Log("cannot record the load of '" + t->name + "': " + s.ToString());
  step.event.ok = true;
  return Status::OK();
}

void TreeCacheImpl::MakeRoom(uint64_t bytes, uint64_t inodes, const Tree* keep) {
  if (options_.quota_bytes == 0 && options_.quota_inodes == 0) return;
  std::set<const Tree*> failed;
  for (;;) {
    StatFsInfo fs;
    Status s = base_->StatFs(&fs);
    if (!s.ok()) {
      Log("quota: cannot read the usage: " + s.ToString());
      return;
    }
    const bool over_bytes =
        options_.quota_bytes != 0 && fs.used_bytes + bytes > options_.quota_bytes;
    const bool over_inodes =
        options_.quota_inodes != 0 && fs.used_inodes + inodes > options_.quota_inodes;
    if (!over_bytes && !over_inodes) return;
    std::shared_ptr<Tree> victim;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [range, t] : by_range_) {
        if (t.get() == keep || failed.count(t.get()) > 0) continue;
        if (t->status != TreeStatus::kLoaded || InUse(*t)) continue;
        // Clean trees first (dropping them costs nothing), least recently
        // used first; a dirty one only when no clean one is left.
        if (victim == nullptr || std::make_pair(t->rec.dirty, t->last_use) <
                                     std::make_pair(victim->rec.dirty, victim->last_use)) {
          victim = t;
        }
      }
    }
    if (victim == nullptr) {
      Log("quota exceeded (" + std::to_string(fs.used_bytes) + " bytes, " +
          std::to_string(fs.used_inodes) + " inodes in use; quota " +
          std::to_string(options_.quota_bytes) + " bytes, " +
          std::to_string(options_.quota_inodes) +
          " inodes) and every loaded tree is in use: going over it");
      return;
    }
    s = Evict(victim);
    if (!s.ok()) {
      failed.insert(victim.get());
      if (s.posix_errno() != EBUSY) Log("cannot evict '" + victim->name + "': " + s.ToString());
    }
  }
}

Status TreeCacheImpl::Evict(const std::shared_ptr<Tree>& t) {
  bool dirty;
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    dirty = t->rec.dirty;
  }
  if (dirty) {
    bool written;
    KVFS_RETURN_IF_ERROR(WriteBack(t, &written));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (t->gone) return Status::OK();
    if (t->status != TreeStatus::kLoaded || InUse(*t) || t->rec.dirty) {
      return Status::FromErrno(EBUSY, "tree '" + t->name + "' is " + StatusName(*t) +
                                          (t->users + t->opens > 0 ? " and in use" : ""));
    }
    t->status = TreeStatus::kEvicting;
    bytes = t->rec.bytes;
  }
  ObservedStep step(options_, CacheEvent::Kind::kEviction);
  step.event.bytes = bytes;
  Status s = base_trees_->ResetToStub(t->top);
  step.event.ok = s.ok();
  if (s.ok() && numbered_) RestubToListedVersion(t);
  if (s.ok() && ownership_) {
    Status r = claims_->ReleaseTree(t->name);
    if (!r.ok()) Log("cannot give up tree '" + t->name + "': " + r.ToString());
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    t->status = s.ok() ? TreeStatus::kUnloaded : TreeStatus::kLoaded;
    cv_.notify_all();
  }
  if (s.ok()) Invalidate(t->top);
  return s;
}

Status TreeCacheImpl::WriteBack(const std::shared_ptr<Tree>& t, bool* written) {
  *written = false;
  uint64_t started;
  bool quiet;
  CacheRecord base;  // the tarball the changes were made to
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !t->writing; });
    if (t->gone || t->status != TreeStatus::kLoaded || !t->rec.dirty) return Status::OK();
    t->writing = true;
    started = t->started;
    quiet = t->started == t->finished;
    base = t->rec;
  }
  ObservedStep step(options_, CacheEvent::Kind::kWriteBack);
  ingest::ExportOptions eo;
  eo.compression = options_.compression;
  progress::ProgressRegistry::Registration tracked;
  if (options_.progress != nullptr) {
    tracked = options_.progress->Begin(TransferIdOf(t->name), "writing back " + t->name, 0);
    eo.progress = tracked.get();
  }
  Status owned;
  if (ownership_) {
    // Only the owner writes a tree back, and only while it still is: the
    // last check is right before the tarball is committed.
    owned = claims_->AcquireTree(t->name, options_.owner);
    eo.before_commit = [&] { return claims_->VerifyTreeOwned(t->name); };
  }
  // Another writer's tarball is never written over: if the store's
  // tarball is not the one the changes were made to, they go to a conflict
  // tarball of their own. (A tree with no tarball behind it, new or
  // ingested by kvfs-ingest, has nothing to compare with: name claims keep
  // other servers from making one of the same name.)
  std::vector<ObjectInfo> tarballs;
  Status s = owned.ok() ? ingest::TarballsOf(store_.get(), t->name, &tarballs) : owned;
  std::string replaced;
  if (s.ok() && !tarballs.empty() && !base.object.empty()) {
    ObjectInfo newest = tarballs[0];
    for (const ObjectInfo& info : tarballs) {
      if (Newer(info, newest)) newest = info;
    }
    if (newest.name != base.object || newest.version != base.version) {
      replaced = newest.name;
      eo.as_tree = ConflictName(t->name);
    }
  }
  ingest::ExportStats es;
  if (s.ok()) s = ingest::ExportTree(base_.get(), t->name, store_.get(), eo, &es);
  ObjectInfo info;
  if (s.ok()) s = store_->Stat(es.object, &info);
  if (s.ok() && numbered_) {
    // Record the new version now: other servers watching the records drop
    // their copy of the old one at once (docs/coordination.md). Should this
    // fail, they number it at their next refresh.
    std::vector<uint64_t> ranges;
    Status n = VersionRanges({info}, &ranges);
    if (!n.ok())
      Log("cannot number " + info.name + " in " + claims_->Describe() + ": " + n.ToString());
  }
  step.event.ok = s.ok();
  step.event.bytes = s.ok() ? info.size : es.object_bytes;
  std::lock_guard<std::mutex> l(mu_);
  t->writing = false;
  cv_.notify_all();
  if (!s.ok()) {
    Status e = Status::FromErrno(s.posix_errno(), "writing tree '" + t->name + "' back to " +
                                                      store_->Describe() + ": " + s.ToString());
    Log(e.ToString());
    return e;
  }
  *written = true;
  if (!eo.as_tree.empty()) {
    // The changes are safe in the conflict tarball (a tree of its own at the
    // next refresh); the tree stays based on its old tarball, so the next
    // refresh replaces it with the other writer's version.
    t->conflict = info.name;
    Log("conflict: tarball " + replaced + " of '" + t->name + "' in " + store_->Describe() +
        " is not the one this server's changes were made to (" + base.object +
        "); they were written as " + info.name + " instead of over it");
    if (quiet && t->started == started) t->rec.dirty = false;
    return WriteRecord(*t);
  }
  t->rec.object = info.name;
  t->rec.version = info.version;
  // A load of this tarball numbers its members afresh.
  t->rec.first_local = 0;
  listing_[t->name] = info;
  // Clean only if no change ran while the tarball was written.
  if (quiet && t->started == started) t->rec.dirty = false;
  return WriteRecord(*t);
}

Status TreeCacheImpl::MkdirTop(std::string_view name_view, const NewObject& obj, Attributes* out) {
  const std::string name(name_view);
  KVFS_RETURN_IF_ERROR(ingest::CheckObjectName(name));
  std::lock_guard<std::mutex> root(root_mu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (by_name_.count(name) > 0 || listing_.count(name) > 0) {
      return Status::Exists("'" + name + "' exists");
    }
  }
  // A tarball another server wrote since the last listing.
  if (ObjectInfo info; FindTarball(name, &info)) {
    return Status::Exists("'" + name + "' exists in the persistent store as " + info.name);
  }
  Status s = claims_->ClaimName(name, options_.owner + " tree=" + name);
  if (s.posix_errno() == EEXIST) {
    // Another server's new tree: shown here as a stub (it loads once that
    // server writes it back), so that the name exists for clients too (NFS
    // servers look a name up after EEXIST).
    AddStubsFor({{name, ObjectInfo{name, 0, WallNow(), 0, 0}}});
    return Status::Exists("'" + name + "' was created by another server sharing " +
                          store_->Describe() + " (" + s.message() + ")");
  }
  KVFS_RETURN_IF_ERROR(s);
  if (numbered_) {
    // In a range claimed in the coordination, so that no server ever uses
    // its numbers for anything else.
    uint64_t range = 0;
    s = ingest::ReserveClaimedRange(base_.get(), claims_, options_.owner, name, &range);
    if (s.ok()) {
      LoadedTree lt;
      lt.range = range;
      lt.name = name;
      lt.attrs.type = FileType::kDirectory;
      lt.attrs.mode = obj.mode & 07777;
      lt.attrs.uid = obj.uid;
      lt.attrs.gid = obj.gid;
      lt.attrs.nlink = 2;
      lt.attrs.atime = lt.attrs.mtime = lt.attrs.ctime = Now();
      s = base_trees_->PublishTree(lt, nullptr);
      if (!s.ok()) {
        Status r = base_trees_->AbandonRange(range);
        if (!r.ok())
          Log("cannot give inode range " + std::to_string(range) + " up: " + r.ToString());
      }
    }
    if (s.ok()) s = base_->GetAttr(schema::RangeOwnerIno(range), out);
  } else {
    s = base_->Mkdir(kRootIno, name, obj, out);
  }
  if (!s.ok()) {
    Status r = claims_->ReleaseName(name);
    if (!r.ok()) Log("cannot release the claim of '" + name + "': " + r.ToString());
    return s;
  }
  Tree t;
  t.name = name;
  t.top = out->ino;
  t.status = TreeStatus::kLoaded;
  t.rec.dirty = true;
  t.last_change = t.last_use = Clock::now();
  t.last_use_wall = WallNow();
  {
    std::lock_guard<std::mutex> l(mu_);
    Register(std::move(t));
    // Without the record the tree is adopted as dirty at the next start
    // anyway.
    s = WriteRecord(*by_name_[name]);
    if (!s.ok()) Log("cannot record new tree '" + name + "': " + s.ToString());
  }
  if (ownership_) {
    // Its creator writes it (a request; the name claim makes it free).
    s = claims_->AcquireTree(name, options_.owner);
    if (!s.ok()) Log("cannot take new tree '" + name + "': " + s.ToString());
  }
  return Status::OK();
}

Status TreeCacheImpl::RmdirTop(std::string_view name_view) {
  const std::string name(name_view);
  std::lock_guard<std::mutex> root(root_mu_);
  std::shared_ptr<Tree> t;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return base_->Rmdir(kRootIno, name);
    t = it->second;
    auto listed = listing_.find(name);
    if (!t->rec.object.empty() || listed != listing_.end()) {
      return Status::FromErrno(
          EPERM, "'" + name + "' is tarball " +
                     (listed != listing_.end() ? listed->second.name : t->rec.object) + " of " +
                     store_->Describe() + ": remove it there");
    }
    if (t->status != TreeStatus::kLoaded || InUse(*t)) {
      return Status::FromErrno(EBUSY, "'" + name + "' is in use");
    }
    t->status = TreeStatus::kEvicting;
  }
  Status s = base_->Rmdir(kRootIno, name);
  {
    std::lock_guard<std::mutex> l(mu_);
    t->status = TreeStatus::kLoaded;
    cv_.notify_all();
  }
  if (!s.ok()) return s;
  Forget(schema::RangeOf(t->top));
  if (ownership_) {
    Status r = claims_->ReleaseTree(name);
    if (!r.ok()) Log("cannot give up tree '" + name + "': " + r.ToString());
  }
  Status r = claims_->ReleaseName(name);
  if (!r.ok() && !r.IsNotFound())
    Log("cannot release the claim of '" + name + "': " + r.ToString());
  return Status::OK();
}

Status TreeCacheImpl::Adopt() {
  std::vector<DirEntry> entries;
  KVFS_RETURN_IF_ERROR(ListDirectory(base_.get(), kRootIno, &entries));
  std::lock_guard<std::mutex> l(mu_);
  for (const DirEntry& e : entries) {
    if (e.attrs.type != FileType::kDirectory || !schema::IsRangeOwner(e.attrs.ino)) continue;
    const std::string& name = e.name;
    const Ino ino = e.attrs.ino;
    TreeState ts;
    KVFS_RETURN_IF_ERROR(base_trees_->ReadTreeState(ino, &ts));
    Tree t;
    t.name = name;
    t.top = ino;
    t.status = ts.stub ? TreeStatus::kUnloaded : TreeStatus::kLoaded;
    std::string value;
    Status s = base_->store()->Get(Column::kMeta, CacheRecordKey(ts.range), &value);
    if (s.ok()) {
      KVFS_RETURN_IF_ERROR(DecodeCacheRecord(value, &t.rec));
    } else if (s.IsNotFound()) {
      // A loaded tree nobody recorded (kvfs-ingest, or a crash right after
      // a mkdir): it may exist nowhere else, so it must be written back.
      t.rec.dirty = !ts.stub;
    } else {
      return s;
    }
    Register(std::move(t));
    if (!s.ok() && !ts.stub) KVFS_RETURN_IF_ERROR(WriteRecord(*by_name_[name]));
  }
  return Status::OK();
}

Status TreeCacheImpl::Refresh() {
  std::vector<ObjectInfo> objects;
  KVFS_RETURN_IF_ERROR(store_->List(&objects));
  std::map<std::string, ObjectInfo> listing;
  for (ObjectInfo& o : objects) {
    std::string name;
    if (!ingest::TreeNameOf(o.name, &name)) continue;
    auto it = listing.find(name);
    // Two compressions of one tree (an export replacing the other was
    // interrupted): the newer one.
    if (it == listing.end() || Newer(o, it->second)) {
      listing[name] = std::move(o);
    }
  }
  return Reconcile(std::move(listing), nullptr);
}

Status TreeCacheImpl::RefreshObject(const std::string& object, bool* busy) {
  *busy = false;
  std::string name;
  if (!ingest::TreeNameOf(object, &name)) return Status::OK();  // not a tarball
  {
    // Behind, and Reconcile would pass it by again: the store has nothing
    // new to say until the tree is idle.
    std::lock_guard<std::mutex> l(mu_);
    auto t = by_name_.find(name);
    if (t != by_name_.end() && BehindLocked(name) && !Idle(*t->second)) {
      *busy = true;
      return Status::OK();
    }
  }
  ObjectInfo info;
  Status s = store_->Stat(object, &info);
  if (s.IsNotFound()) {
    KVFS_RETURN_IF_ERROR(Refresh());  // replaced or removed since: the listing tells
  } else {
    KVFS_RETURN_IF_ERROR(s);
    std::map<std::string, ObjectInfo> listing;
    listing[name] = std::move(info);
    KVFS_RETURN_IF_ERROR(Reconcile(std::move(listing), &name));
  }
  // A listing passes busy trees by just as Reconcile(only) does.
  std::lock_guard<std::mutex> l(mu_);
  *busy = BehindLocked(name);
  return Status::OK();
}

bool TreeCacheImpl::BehindLocked(const std::string& name) const {
  auto t = by_name_.find(name);
  auto listed = listing_.find(name);
  if (t == by_name_.end() || listed == listing_.end()) return false;
  const Tree& tree = *t->second;
  return tree.status == TreeStatus::kLoading || tree.status == TreeStatus::kEvicting ||
         (tree.status == TreeStatus::kLoaded && !tree.rec.dirty && !tree.rec.object.empty() &&
          tree.rec.version != listed->second.version);
}

Status TreeCacheImpl::Reconcile(std::map<std::string, ObjectInfo> listing,
                                const std::string* only) {
  std::lock_guard<std::mutex> root(root_mu_);
  std::vector<std::pair<std::string, ObjectInfo>> added;
  std::vector<std::shared_ptr<Tree>> gone, stale;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (only != nullptr) {
      // Another compression of the tree listed before and newer wins, as in
      // a listing.
      auto known = listing_.find(*only);
      ObjectInfo& info = listing.at(*only);
      if (known != listing_.end() && known->second.name != info.name &&
          Newer(known->second, info)) {
        info = known->second;
      }
    }
    for (const auto& [name, info] : listing) {
      if (by_name_.count(name) == 0) added.emplace_back(name, info);
    }
    ForEachTreeLocked(only, [&](const std::string& name, const std::shared_ptr<Tree>& t) {
      auto it = listing.find(name);
      const bool idle = Idle(*t);
      if (it == listing.end()) {
        // Its tarball went away: so does the tree, unless it has changes
        // (new trees have no tarball yet).
        if (idle && (t->status == TreeStatus::kUnloaded || !t->rec.object.empty())) {
          gone.push_back(t);
        } else if (!t->rec.object.empty() && t->rec.dirty) {
          Log("tarball " + t->rec.object + " of '" + name +
              "' was removed from the store; the changed tree will be written back");
        }
      } else if (t->status == TreeStatus::kLoaded && it->second.version != t->rec.version &&
                 !t->rec.object.empty()) {
        if (idle) {
          stale.push_back(t);  // replaced in the store: load the new one next time
        } else if (t->rec.dirty) {
          Log("tarball " + it->second.name + " of '" + name +
              "' changed in the store while this server has changes: they will be written back "
              "under a conflict name");
        }
      }
    });
    if (only == nullptr) {
      listing_ = std::move(listing);
    } else {
      listing_[*only] = std::move(listing.at(*only));
    }
  }
  AddStubsFor(added);
  for (const std::shared_ptr<Tree>& t : gone) {
    ObjectInfo now;
    if (FindTarball(t->name, &now)) continue;  // written back since the listing
    bool claimed = false;
    if (t->rec.object.empty() && claims_->IsNameClaimed(t->name, &claimed).ok() && claimed) {
      continue;  // another server's new tree, not written back yet
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      if (InUse(*t) || t->rec.dirty) continue;
      t->status = TreeStatus::kEvicting;
    }
    uint64_t range;
    Status s = base_trees_->DropTree(t->name, &range);
    {
      std::lock_guard<std::mutex> l(mu_);
      t->status = s.ok() ? TreeStatus::kUnloaded : TreeStatus::kLoaded;
      cv_.notify_all();
    }
    if (s.ok()) {
      Forget(range);
    } else {
      Log("cannot remove '" + t->name + "' whose tarball is gone: " + s.ToString());
    }
  }
  for (const std::shared_ptr<Tree>& t : stale) {
    ObjectInfo now;
    if (!FindTarball(t->name, &now)) continue;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (now.version == t->rec.version) continue;  // written back since the listing
    }
    Status s = Evict(t);
    if (!s.ok() && s.posix_errno() != EBUSY) {
      Log("cannot drop the outdated copy of '" + t->name + "': " + s.ToString());
    }
  }
  if (numbered_) {
    // Stubs of an older version (or made before another server's new tree
    // was written back) move to the range of the listed version.
    std::vector<std::shared_ptr<Tree>> stubs;
    std::vector<ObjectInfo> infos;
    {
      std::lock_guard<std::mutex> l(mu_);
      ForEachTreeLocked(only, [&](const std::string& name, const std::shared_ptr<Tree>& t) {
        auto it = listing_.find(name);
        if (it == listing_.end() || t->status != TreeStatus::kUnloaded || InUse(*t)) return;
        stubs.push_back(t);
        infos.push_back(it->second);
      });
    }
    std::vector<uint64_t> ranges;
    Status s = VersionRanges(infos, &ranges);
    if (!s.ok()) {
      Log("cannot number the tarballs of " + store_->Describe() + ": " + s.ToString());
      stubs.clear();
    }
    for (size_t i = 0; i < stubs.size(); ++i) {
      const std::shared_ptr<Tree>& t = stubs[i];
      {
        std::lock_guard<std::mutex> l(mu_);
        if (t->gone || t->status != TreeStatus::kUnloaded || InUse(*t) ||
            schema::RangeOf(t->top) == ranges[i]) {
          continue;
        }
        t->status = TreeStatus::kEvicting;
      }
      s = Restub(t, ranges[i]);
      if (!s.ok()) Log(s.ToString());
      std::lock_guard<std::mutex> l(mu_);
      t->status = TreeStatus::kUnloaded;
      cv_.notify_all();
    }
  }
  if (!added.empty() || !gone.empty()) Invalidate(kRootIno);
  return Status::OK();
}

Status TreeCacheImpl::Restub(const std::shared_ptr<Tree>& t, uint64_t range) {
  StubTree st;
  st.name = t->name;
  st.obj.mode = 0755;
  st.mtime = Now();
  st.range = range;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = listing_.find(t->name);
    if (it != listing_.end()) st.mtime = Timespec{it->second.mtime_sec, it->second.mtime_nsec};
  }
  uint64_t old_range = 0;
  Status s = base_trees_->DropTree(t->name, &old_range);
  if (!s.ok()) {
    return Status::FromErrno(s.posix_errno(), "cannot move stub '" + t->name + "' to inode range " +
                                                  std::to_string(range) + ": " + s.ToString());
  }
  std::vector<Ino> inos;
  Status added = base_trees_->AddStubs({st}, &inos);
  {
    std::lock_guard<std::mutex> l(mu_);
    by_range_.erase(old_range);
    WriteBatch b;
    b.Delete(Column::kMeta, CacheRecordKey(old_range));
    if (added.ok()) {
      t->top = inos[0];
      t->rec.first_local = 0;
      by_range_[range] = t;
      if (!t->rec.object.empty()) {
        b.Put(Column::kMeta, CacheRecordKey(range), EncodeCacheRecord(t->rec));
      }
    } else {
      t->gone = true;
      by_name_.erase(t->name);
    }
    WriteOptions wo;
    wo.sync = true;
    s = base_->store()->Write(wo, b);
    if (!s.ok()) Log("cannot move the cache record of '" + t->name + "': " + s.ToString());
  }
  Invalidate(kRootIno);
  if (!added.ok()) {
    return Status::FromErrno(added.posix_errno(), "cannot show '" + t->name + "' in inode range " +
                                                      std::to_string(range) + ": " +
                                                      added.ToString());
  }
  return Status::OK();
}

void TreeCacheImpl::RestubToListedVersion(const std::shared_ptr<Tree>& t) {
  ObjectInfo info;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = listing_.find(t->name);
    if (it == listing_.end()) return;
    info = it->second;
  }
  std::vector<uint64_t> ranges;
  Status s = VersionRanges({info}, &ranges);
  // Otherwise the next load moves it.
  if (s.ok() && ranges[0] != schema::RangeOf(t->top)) s = Restub(t, ranges[0]);
  if (!s.ok()) Log("after evicting '" + t->name + "': " + s.ToString());
}

void TreeCacheImpl::AddStubsFor(const std::vector<std::pair<std::string, ObjectInfo>>& names) {
  std::vector<uint64_t> ranges;
  if (numbered_ && !names.empty()) {
    std::vector<ObjectInfo> infos;
    for (const auto& [name, info] : names) infos.push_back(info);
    Status s = VersionRanges(infos, &ranges);
    if (!s.ok()) {
      // Not shown until they can be numbered like everywhere else.
      Log("cannot number " + std::to_string(names.size()) +
          " new tarballs (shown at the next refresh): " + s.ToString());
      return;
    }
  }
  auto add = [&](size_t begin, size_t end) -> Status {
    std::vector<StubTree> stubs;
    for (size_t i = begin; i < end; ++i) {
      StubTree st;
      st.name = names[i].first;
      st.obj.mode = 0755;
      st.mtime = Timespec{names[i].second.mtime_sec, names[i].second.mtime_nsec};
      if (numbered_) st.range = ranges[i];
      stubs.push_back(std::move(st));
    }
    std::vector<Ino> inos;
    KVFS_RETURN_IF_ERROR(base_trees_->AddStubs(stubs, &inos));
    std::lock_guard<std::mutex> l(mu_);
    for (size_t i = 0; i < inos.size(); ++i) {
      Tree t;
      t.name = stubs[i].name;
      t.top = inos[i];
      t.status = TreeStatus::kUnloaded;
      Register(std::move(t));
    }
    return Status::OK();
  };
  for (size_t begin = 0; begin < names.size(); begin += kStubBatch) {
    const size_t end = std::min(names.size(), begin + kStubBatch);
    if (add(begin, end).ok()) continue;
    // Some name is taken (a file or an unmanaged directory): one by one.
    for (size_t i = begin; i < end; ++i) {
      Status s = add(i, i + 1);
      if (!s.ok()) {
        Log("cannot show tarball " + names[i].second.name + " as '" + names[i].first +
            "': " + s.ToString());
      }
    }
  }
}

void TreeCacheImpl::WriteBackDue() {
  if (options_.writeback_delay_seconds <= 0) return;
  const auto due = Clock::now() - std::chrono::seconds(options_.writeback_delay_seconds);
  std::vector<std::shared_ptr<Tree>> trees;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [range, t] : by_range_) {
      if (t->rec.dirty && t->status == TreeStatus::kLoaded && !t->writing &&
          t->last_change <= due && t->started == t->finished) {
        trees.push_back(t);
      }
    }
  }
  for (const std::shared_ptr<Tree>& t : trees) {
    bool written;
    if (!WriteBack(t, &written).ok()) {
      // Logged; try again a delay later.
      std::lock_guard<std::mutex> l(mu_);
      t->last_change = Clock::now();
    }
  }
}

void TreeCacheImpl::Background() {
  Clock::time_point next_refresh =
      Clock::now() + std::chrono::seconds(std::max(options_.refresh_seconds, 1));
  // New versions of trees that were busy, or that could not be looked at (the
  // store failed): looked at again on the next round (about a second later),
  // until this server has dropped the old version. `failing`: those whose
  // failure was logged already.
  std::set<std::string> retry, failing;
  for (;;) {
    std::vector<Ino> invalidations;
    std::set<std::string> new_versions;
    bool refresh;
    {
      std::unique_lock<std::mutex> l(mu_);
      bg_cv_.wait_for(l, std::chrono::seconds(1), [&] {
        return stop_ || !invalidations_.empty() || refresh_requested_ || !new_versions_.empty();
      });
      if (stop_) return;
      invalidations.swap(invalidations_);
      new_versions.swap(new_versions_);
      new_versions.merge(retry);
      retry.clear();
      refresh =
          refresh_requested_ || (options_.refresh_seconds > 0 && Clock::now() >= next_refresh);
      refresh_requested_ = false;
    }
    for (Ino ino : invalidations) options_.invalidate(ino);
    if (refresh) {
      Status s = Refresh();  // covers the new versions too
      if (!s.ok()) Log("cannot list " + store_->Describe() + ": " + s.ToString());
      next_refresh = Clock::now() + std::chrono::seconds(std::max(options_.refresh_seconds, 1));
      // The listing passes busy trees by as well: look at these once more.
      retry.swap(new_versions);
    } else {
      for (const std::string& object : new_versions) {
        bool busy = false;
        Status s = RefreshObject(object, &busy);
        if (s.ok()) {
          failing.erase(object);
        } else if (failing.insert(object).second) {
          Log("cannot look at the new version of " + object +
              " (trying again every second): " + s.ToString());
        }
        if (busy || !s.ok()) retry.insert(object);
      }
    }
    WriteBackDue();
    MakeRoom(0, 0, nullptr);
  }
}

}  // namespace

Status TreeCache::List(std::vector<CachedTree>* out) {
  bool more = false;
  return ListPage("", std::numeric_limits<size_t>::max(), out, &more);
}

Status TreeCache::Open(std::unique_ptr<FileSystem> base,
                       std::unique_ptr<ingest::PersistentStore> store,
                       const TreeCacheOptions& options, std::unique_ptr<TreeCache>* out) {
  if (base == nullptr || store == nullptr) {
    return Status::InvalidArgument("a tree cache needs a file system and a persistent store");
  }
  if (options.staging_dir.empty()) return Status::InvalidArgument("no staging directory");
  auto cache = std::make_unique<TreeCacheImpl>(std::move(base), std::move(store), options);
  KVFS_RETURN_IF_ERROR(cache->Start());
  *out = std::move(cache);
  return Status::OK();
}

}  // namespace kvfs::cache
