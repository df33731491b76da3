#include "ingest/service.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <memory>

#include "common/fs/schema.h"
#include "common/kv/kv_backend.h"
#include "ingest/ingest.h"
#include "ingest/persistent_store.h"
#include "store/store.h"

namespace kvfs::ingest {

namespace {

void PutSize(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool GetSize(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i)
    *v |= static_cast<uint32_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(4);
  return true;
}

bool GetString(std::string_view* in, std::string* s) {
  uint32_t n;
  if (!GetSize(in, &n) || in->size() < n) return false;
  s->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

std::string Get(const Message& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

bool Flag(const Message& m, const std::string& key) { return Get(m, key) == "1"; }

Status GetNumber(const Message& m, const std::string& key, uint64_t* v) {
  *v = 0;
  const std::string s = Get(m, key);
  if (s.empty()) return Status::OK();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Status::InvalidArgument("request field " + key + " is not a number: '" + s + "'");
  }
  return Status::OK();
}

// The stricter of two limits where 0 means none.
uint64_t Stricter(uint64_t a, uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

Status Require(const Message& m, const std::string& key, std::string* v) {
  *v = Get(m, key);
  if (v->empty()) return Status::InvalidArgument("request lacks " + key);
  return Status::OK();
}

// Opens the store whose URL is field `key`, with the store settings the
// request carries (fields named as in store::kStoreSettings).
Status OpenStore(const ServiceOptions& so, const Message& m, const std::string& key,
                 std::unique_ptr<PersistentStore>* out) {
  store::StoreSpec spec;
  KVFS_RETURN_IF_ERROR(Require(m, key, &spec.url));
  for (const char* setting : store::kStoreSettings) {
    if (auto it = m.find(setting); it != m.end()) spec.options[setting] = it->second;
  }
  spec.log = so.log;
  return store::OpenStore(spec, out);
}

Status DoIngest(FileSystem* fs, const ServiceOptions& so, const Message& req, Message* resp,
                std::vector<Ino>* changed) {
  IngestOptions o;
  o.name = Get(req, "name");
  o.replace = Flag(req, "replace");
  o.skip_special = Flag(req, "skip_special");
  KVFS_RETURN_IF_ERROR(GetNumber(req, "max_archive_bytes", &o.max_archive_bytes));
  KVFS_RETURN_IF_ERROR(GetNumber(req, "max_tree_bytes", &o.max_tree_bytes));
  o.max_archive_bytes = Stricter(o.max_archive_bytes, so.max_archive_bytes);
  o.max_tree_bytes = Stricter(o.max_tree_bytes, so.max_tree_bytes);
  o.sort_memory_bytes = so.sort_memory_bytes;
  o.staging_dir = so.staging_dir;
  o.claim_owner = so.claim_owner;
  o.hasher = so.hasher;

  std::unique_ptr<PersistentStore> store, claims_store;
  const bool from_store = !Get(req, "store").empty();
  if (from_store) KVFS_RETURN_IF_ERROR(OpenStore(so, req, "store", &store));
  if (!Get(req, "claims").empty()) {
    KVFS_RETURN_IF_ERROR(OpenStore(so, req, "claims", &claims_store));
  }
  // The range claim: in etcd with coordination=, else in the claims= store,
  // else in the store the tarball comes from (none for a local tarball).
  PersistentStore* holder = claims_store ? claims_store.get() : store.get();
  std::unique_ptr<coord::Coordination> claims;
  const std::string coordination =
      Get(req, "coordination").empty() ? so.coordination : Get(req, "coordination");
  if (!coordination.empty() || holder != nullptr) {
    coord::CoordinationOptions co;
    co.log = so.log;
    KVFS_RETURN_IF_ERROR(coord::OpenCoordination(coordination, holder, co, &claims));
    o.claims = claims.get();
  }

  progress::ProgressRegistry::Registration tracked;
  if (so.progress != nullptr && !Get(req, "progress_id").empty()) {
    const std::string subject = from_store ? Get(req, "object") : Get(req, "tarball");
    tracked = so.progress->Begin(Get(req, "progress_id"), "ingesting " + subject, 0);
    o.progress = tracked.get();
  }
  IngestStats st;
  if (from_store) {
    std::string object;
    KVFS_RETURN_IF_ERROR(Require(req, "object", &object));
    KVFS_RETURN_IF_ERROR(IngestFromStore(fs, store.get(), object, o, &st));
  } else {
    std::string path;
    KVFS_RETURN_IF_ERROR(Require(req, "tarball", &path));
    if (path.front() != '/') return Status::InvalidArgument("tarball path must be absolute");
    KVFS_RETURN_IF_ERROR(IngestFile(fs, path, o, &st));
  }
  changed->push_back(kRootIno);
  if (st.replaced_range != 0) changed->push_back(schema::RangeOwnerIno(st.replaced_range));
  Message& r = *resp;
  r["name"] = st.name;
  r["range"] = std::to_string(st.range);
  r["replaced_range"] = std::to_string(st.replaced_range);
  r["directories"] = std::to_string(st.build.directories);
  r["files"] = std::to_string(st.build.files);
  r["symlinks"] = std::to_string(st.build.symlinks);
  r["hard_links"] = std::to_string(st.build.hard_links);
  r["skipped"] = std::to_string(st.build.skipped);
  r["bytes"] = std::to_string(st.build.bytes);
  r["archive_bytes"] = std::to_string(st.archive_bytes);
  r["loaded_bytes"] = std::to_string(st.loaded_bytes);
  r["sort_runs"] = std::to_string(st.build.sort_runs);
  r["build_seconds"] = std::to_string(st.build_seconds);
  r["load_seconds"] = std::to_string(st.load_seconds);
  r["publish_seconds"] = std::to_string(st.publish_seconds);
  return Status::OK();
}

Status DoEvict(FileSystem* fs, const std::string& name, Message* resp, std::vector<Ino>* changed) {
  EvictStats st;
  KVFS_RETURN_IF_ERROR(EvictTree(fs, name, &st));
  changed->push_back(kRootIno);
  changed->push_back(schema::RangeOwnerIno(st.range));
  (*resp)["evicted_range"] = std::to_string(st.range);
  (*resp)["freed_bytes"] = std::to_string(st.bytes);
  (*resp)["freed_inodes"] = std::to_string(st.inodes);
  return Status::OK();
}

Status DoExport(FileSystem* fs, const ServiceOptions& so, const Message& req, Message* resp,
                std::vector<Ino>* changed) {
  std::string name;
  KVFS_RETURN_IF_ERROR(Require(req, "name", &name));
  std::unique_ptr<PersistentStore> store;
  KVFS_RETURN_IF_ERROR(OpenStore(so, req, "store", &store));
  ExportOptions o;
  const std::string compression = Get(req, "compression");
  if (!compression.empty() && !ParseCompression(compression, &o.compression)) {
    return Status::InvalidArgument("unknown compression '" + compression + "'");
  }
  progress::ProgressRegistry::Registration tracked;
  if (so.progress != nullptr && !Get(req, "progress_id").empty()) {
    tracked = so.progress->Begin(Get(req, "progress_id"), "exporting " + name, 0);
    o.progress = tracked.get();
  }
  ExportStats st;
  KVFS_RETURN_IF_ERROR(ExportTree(fs, name, store.get(), o, &st));
  Message& r = *resp;
  r["object"] = st.object;
  r["members"] = std::to_string(st.members);
  r["bytes"] = std::to_string(st.bytes);
  r["object_bytes"] = std::to_string(st.object_bytes);
  r["seconds"] = std::to_string(st.seconds);
  if (Flag(req, "evict")) return DoEvict(fs, name, resp, changed);
  return Status::OK();
}

Status DoProgress(const ServiceOptions& so, const Message& req, Message* resp) {
  std::string id;
  KVFS_RETURN_IF_ERROR(Require(req, "id", &id));
  progress::ProgressSnapshot snap;
  if (so.progress == nullptr || !so.progress->Find(id, &snap)) {
    return Status::NotFound("no transfer '" + id + "' in progress");
  }
  PutProgress(snap, "", resp);
  return Status::OK();
}

}  // namespace

void PutProgress(const progress::ProgressSnapshot& p, const std::string& prefix, Message* m) {
  (*m)[prefix + "what"] = p.what;
  (*m)[prefix + "done_bytes"] = std::to_string(p.done_bytes);
  (*m)[prefix + "total_bytes"] = std::to_string(p.total_bytes);
  (*m)[prefix + "seconds"] = std::to_string(p.seconds);
}

bool GetProgress(const Message& m, const std::string& prefix, progress::ProgressSnapshot* out) {
  *out = progress::ProgressSnapshot();
  out->what = Get(m, prefix + "what");
  if (out->what.empty() || !GetNumber(m, prefix + "done_bytes", &out->done_bytes).ok() ||
      !GetNumber(m, prefix + "total_bytes", &out->total_bytes).ok()) {
    return false;
  }
  const std::string seconds = Get(m, prefix + "seconds");
  char* end = nullptr;
  out->seconds = std::strtod(seconds.c_str(), &end);
  return end != seconds.c_str();
}

std::string EncodeMessage(const Message& m) {
  std::string out;
  PutSize(&out, static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    PutSize(&out, static_cast<uint32_t>(k.size()));
    out += k;
    PutSize(&out, static_cast<uint32_t>(v.size()));
    out += v;
  }
  return out;
}

Status DecodeMessage(std::string_view data, Message* m) {
  m->clear();
  uint32_t count;
  if (!GetSize(&data, &count)) return Status::InvalidArgument("truncated message");
  for (uint32_t i = 0; i < count; ++i) {
    std::string k, v;
    if (!GetString(&data, &k) || !GetString(&data, &v)) {
      return Status::InvalidArgument("truncated message");
    }
    (*m)[std::move(k)] = std::move(v);
  }
  if (!data.empty()) return Status::InvalidArgument("trailing bytes after a message");
  return Status::OK();
}

void ExecuteRequest(FileSystem* fs, const ServiceOptions& options, const Message& request,
                    Message* response, std::vector<Ino>* changed) {
  response->clear();
  std::vector<Ino> local;
  if (changed == nullptr) changed = &local;
  const std::string op = Get(request, "op");
  Status s;
  if (op == "ingest") {
    s = DoIngest(fs, options, request, response, changed);
  } else if (op == "export") {
    s = DoExport(fs, options, request, response, changed);
  } else if (op == "evict") {
    std::string name;
    s = Require(request, "name", &name);
    if (s.ok()) s = DoEvict(fs, name, response, changed);
  } else if (op == "ping") {
    s = Status::OK();
  } else if (op == "checkpoint") {
    std::string dest;
    s = Require(request, "dest", &dest);
    if (s.ok() && dest.front() != '/') s = Status::InvalidArgument("dest must be absolute");
    if (s.ok()) s = CheckpointKVStore(fs->store(), dest);
  } else if (op == "progress") {
    s = DoProgress(options, request, response);
  } else {
    s = Status::InvalidArgument("unknown request '" + op + "'");
  }
  (*response)["errno"] = std::to_string(s.posix_errno());
  (*response)["message"] = s.message();
}

Status ResponseStatus(const Message& response) {
  uint64_t err = 0;
  Status s = GetNumber(response, "errno", &err);
  if (!s.ok() || response.find("errno") == response.end()) {
    return Status::IOError("malformed response from the ingest service");
  }
  if (err == 0) return Status::OK();
  return Status::FromErrno(static_cast<int>(err), Get(response, "message"));
}

std::string DefaultClaimOwner() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return "host=" + std::string(host) + " pid=" + std::to_string(getpid());
}

}  // namespace kvfs::ingest
