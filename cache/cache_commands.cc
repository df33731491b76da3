#include "cache/cache_commands.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace kvfs::cache {

namespace {

std::string Get(const ingest::Message& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

Status RequireName(const ingest::Message& request, std::string* name) {
  *name = Get(request, "name");
  if (name->empty()) return Status::InvalidArgument("missing field 'name'");
  return Status::OK();
}

std::string Field(size_t i, const char* field) { return "tree." + std::to_string(i) + "." + field; }

std::string FormatTime(int64_t sec) {
  if (sec == 0) return "-";
  std::time_t t = static_cast<std::time_t>(sec);
  struct tm tm;
  char buf[32];
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

bool ExecuteCacheRequest(TreeCache* cache, const ingest::Message& request,
                         ingest::Message* response) {
  const std::string op = Get(request, "op");
  if (!op.starts_with("cache-")) return false;
  response->clear();
  std::string name;
  Status s;
  if (op == "cache-list") {
    std::vector<CachedTree> trees;
    bool more = false;
    s = cache->ListPage(Get(request, "after"), kListPageTrees, &trees, &more);
    size_t i = 0, bytes = 0;
    for (; s.ok() && i < trees.size(); ++i) {
      const CachedTree& t = trees[i];
      if (i > 0 && bytes >= kListPageBytes) {
        more = true;  // the rest in the next page
        break;
      }
      // Its fields' size: the strings, and about 300 bytes for the keys,
      // the numbers and a transfer's progress.
      bytes += t.name.size() + t.state.size() + t.object.size() + t.last_error.size() +
               t.conflict.size() + 300;
      (*response)[Field(i, "name")] = t.name;
      (*response)[Field(i, "state")] = t.state;
      (*response)[Field(i, "bytes")] = std::to_string(t.bytes);
      (*response)[Field(i, "inodes")] = std::to_string(t.inodes);
      (*response)[Field(i, "last_use")] = std::to_string(t.last_use);
      (*response)[Field(i, "open_files")] = std::to_string(t.open_files);
      (*response)[Field(i, "in_use")] = std::to_string(t.in_use);
      (*response)[Field(i, "object")] = t.object;
      (*response)[Field(i, "error")] = t.last_error;
      if (t.transferring) ingest::PutProgress(t.transfer, Field(i, "transfer_"), response);
      (*response)[Field(i, "conflict")] = t.conflict;
    }
    if (s.ok()) {
      (*response)["trees"] = std::to_string(i);
      (*response)["more"] = more ? "1" : "0";
    }
  } else if (op == "cache-load") {
    s = RequireName(request, &name);
    if (s.ok()) s = cache->Load(name);
  } else if (op == "cache-flush") {
    name = Get(request, "name");
    if (name.empty()) {
      s = cache->FlushAll();
    } else {
      bool written = false;
      s = cache->Flush(name, &written);
      (*response)["written"] = written ? "1" : "0";
    }
  } else if (op == "cache-drop") {
    s = RequireName(request, &name);
    if (s.ok()) s = cache->Drop(name);
  } else if (op == "cache-refresh") {
    s = cache->Refresh();
    (*response)["store"] = cache->persistent_store()->Describe();
  } else if (op == "cache-quota") {
    QuotaInfo q;
    s = cache->Quota(&q);
    (*response)["quota_bytes"] = std::to_string(q.quota_bytes);
    (*response)["quota_inodes"] = std::to_string(q.quota_inodes);
    (*response)["used_bytes"] = std::to_string(q.used_bytes);
    (*response)["used_inodes"] = std::to_string(q.used_inodes);
    (*response)["trees"] = std::to_string(q.trees);
    (*response)["loaded"] = std::to_string(q.loaded);
    (*response)["dirty"] = std::to_string(q.dirty);
    (*response)["store"] = cache->persistent_store()->Describe();
  } else {
    s = Status::InvalidArgument("unknown cache command '" + op + "'");
  }
  (*response)["errno"] = std::to_string(s.posix_errno());
  (*response)["message"] = s.message();
  return true;
}

std::string FormatCacheResponse(const ingest::Message& request, const ingest::Message& response) {
  const std::string op = Get(request, "op");
  const std::string name = Get(request, "name");
  if (op == "cache-list") {
    std::string out;
    char line[512];
    if (Get(request, "after").empty()) {  // the first page
      std::snprintf(line, sizeof(line), "%-24s %-9s %14s %10s %-20s %5s %5s %s\n", "TREE", "STATE",
                    "BYTES", "INODES", "LAST USE", "OPEN", "BUSY", "TARBALL");
      out += line;
    }
    const size_t n = std::strtoull(Get(response, "trees").c_str(), nullptr, 10);
    for (size_t i = 0; i < n; ++i) {
      // The tarball's name last and whole (it may be longer than the line).
      std::snprintf(
          line, sizeof(line), "%-24s %-9s %14s %10s %-20s %5s %5s ",
          Get(response, Field(i, "name")).c_str(), Get(response, Field(i, "state")).c_str(),
          Get(response, Field(i, "bytes")).c_str(), Get(response, Field(i, "inodes")).c_str(),
          FormatTime(std::strtoll(Get(response, Field(i, "last_use")).c_str(), nullptr, 10))
              .c_str(),
          Get(response, Field(i, "open_files")).c_str(), Get(response, Field(i, "in_use")).c_str());
      out += line;
      out += Get(response, Field(i, "object")) + "\n";
      const std::string error = Get(response, Field(i, "error"));
      if (!error.empty()) out += "  last load failed: " + error + "\n";
      if (progress::ProgressSnapshot p; ingest::GetProgress(response, Field(i, "transfer_"), &p)) {
        out += "  " + p.what + ": " + progress::FormatProgress(p) + "\n";
      }
      const std::string conflict = Get(response, Field(i, "conflict"));
      if (!conflict.empty()) {
        out +=
            "  conflict: the tarball changed in the store since this server loaded it; "
            "its changes were written as " +
            conflict + "\n";
      }
    }
    return out;
  }
  if (op == "cache-quota") {
    auto limit = [&](const char* key) {
      const std::string v = Get(response, key);
      return v == "0" ? std::string("none") : v;
    };
    return "bytes " + Get(response, "used_bytes") + " of " + limit("quota_bytes") + ", inodes " +
           Get(response, "used_inodes") + " of " + limit("quota_inodes") + "; trees " +
           Get(response, "trees") + ", loaded " + Get(response, "loaded") + ", dirty " +
           Get(response, "dirty") + "; store " + Get(response, "store") + "\n";
  }
  if (op == "cache-load") return "loaded " + name + "\n";
  if (op == "cache-drop") return "dropped " + name + "\n";
  if (op == "cache-refresh") {
    return "refreshed the listing of the persistent store " + Get(response, "store") + "\n";
  }
  if (op == "cache-flush") {
    if (name.empty()) return "wrote back every changed tree\n";
    return Get(response, "written") == "1" ? "wrote back " + name + "\n"
                                           : name + " has no changes to write back\n";
  }
  return "";
}

bool NextCacheListRequest(const ingest::Message& request, const ingest::Message& response,
                          ingest::Message* next) {
  if (Get(request, "op") != "cache-list" || Get(response, "more") != "1") return false;
  const size_t n = std::strtoull(Get(response, "trees").c_str(), nullptr, 10);
  if (n == 0) return false;  // a page without trees cannot say where to go on
  *next = request;
  (*next)["after"] = Get(response, Field(n - 1, "name"));
  return true;
}

}  // namespace kvfs::cache
