// s3_bench: what a persistent store in an S3 bucket costs (docs/stores.md,
// docs/benchmarks.md "Persistent store in a bucket"); bench/s3_bench.sh
// runs it against radosgw next to its baselines (aws s3 cp, aws s3api
// list-objects-v2).
//
//   s3_bench load      --store URL --dir D --tree NAME [--count] [-o s3_x=v...]
//                      [--kv-options LIST]
//       a cold load of tree NAME from the store into a fresh cache (TreeCache
//       over RocksDB in D, with the backend's options LIST): seconds, and
//       with --count the requests and bytes the server saw (through a
//       FaultProxy of this process)
//   s3_bench writeback --store URL --dir D --tree NAME [--count] [-o ...]
//       loads NAME (not counted), changes one file, writes the tree back
//   s3_bench list      --store URL [-o ...]      PersistentStore::List
//   s3_bench startup   --store URL --dir D [-o ...]
//       TreeCache::Open on a fresh key/value store (a stub per tarball), then
//       again on the same one (a server restart)
//   s3_bench put       --store URL --file F --object NAME [-o ...]
//   s3_bench fill      --endpoint E --bucket B --prefix P --objects N [--threads T]
//       N tiny objects P/run-NNNNNNN.tar
//   s3_bench put-files --endpoint E --bucket B --prefix P --from DIR [--threads T]
//       every file below DIR as object P/PATH (a tree kept file by file)
//   s3_bench read-files --endpoint E --bucket B --prefix P [--threads T] [--count]
//       reads such a tree back the way a file-by-file client does: a
//       listing per directory (delimiter '/'), a GET per file
//
// Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the usual
// profile). Each prints one JSON line.
#include <pugixml.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_cache.h"
#include "bench/bench_program.h"
#include "store/s3/credentials.h"
#include "store/s3/s3_client.h"
#include "store/store.h"
#include "tests/s3/fault_proxy.h"

namespace kvfs {
namespace {

using bench::Die;
using bench::SecondsSince;

using Clock = std::chrono::steady_clock;
using store::s3::S3Client;
using store::s3::S3Request;
using store::s3::S3Response;

struct Args {
  std::string command;
  std::map<std::string, std::string> values;  // --name value
  store::StoreOptions options;                // -o name=value
  bool count = false;

  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    if (it != values.end()) return it->second;
    if (fallback.empty()) Die("--" + name + " is required");
    return fallback;
  }
  // The value of an option that may be absent ("" then).
  std::string Optional(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::string() : it->second;
  }
};

Args Parse(int argc, char** argv) {
  if (argc < 2) Die("usage: s3_bench COMMAND [options] (see bench/s3_bench.cc)");
  Args a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--count") {
      a.count = true;
    } else if (arg == "-o" && i + 1 < argc) {
      const std::string kv = argv[++i];
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) Die("-o takes name=value");
      a.options[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (arg.starts_with("--") && i + 1 < argc) {
      a.values[arg.substr(2)] = argv[++i];
    } else {
      Die("unknown argument " + arg);
    }
  }
  return a;
}

// The requests and bytes a proxy saw.
struct Traffic {
  uint64_t requests = 0, bytes_up = 0, bytes_down = 0;
  std::map<std::string, uint64_t> by_method;
};

Traffic Count(const s3_test::FaultProxy& proxy) {
  Traffic t;
  for (const s3_test::ProxiedRequest& r : proxy.Requests()) {
    ++t.requests;
    ++t.by_method[r.method];
    t.bytes_up += r.request_bytes;
    t.bytes_down += r.response_bytes;
  }
  return t;
}

std::string Json(const Traffic& t) {
  std::string methods;
  for (const auto& [m, n] : t.by_method) {
    methods += (methods.empty() ? "" : ", ") + std::string("\"") + m + "\": " + std::to_string(n);
  }
  return "\"requests\": " + std::to_string(t.requests) +
         ", \"bytes_up\": " + std::to_string(t.bytes_up) +
         ", \"bytes_down\": " + std::to_string(t.bytes_down) + ", \"by_method\": {" + methods + "}";
}

// The store of `a`, through a counting proxy (kept in *proxy) with --count.
store::StoreSpec SpecOf(const Args& a, std::unique_ptr<s3_test::FaultProxy>* proxy) {
  store::StoreSpec spec = store::StoreAt(a.Get("store"));
  spec.options = a.options;
  if (a.count) {
    const std::string endpoint = spec.options["s3_endpoint"];  // http://HOST:PORT
    const size_t host = endpoint.find("://") + 3, colon = endpoint.rfind(':');
    if (endpoint.empty() || colon < host) Die("--count needs -o s3_endpoint=http://HOST:PORT");
    Status s = s3_test::FaultProxy::Start(endpoint.substr(host, colon - host),
                                          std::atoi(endpoint.c_str() + colon + 1), "", proxy);
    if (!s.ok()) Die("proxy", s);
    spec.options["s3_endpoint"] = (*proxy)->endpoint();
  }
  return spec;
}

int Load(const Args& a, bool writeback) {
  const std::string dir = a.Get("dir"), tree = a.Get("tree");
  std::filesystem::remove_all(dir);
  std::unique_ptr<s3_test::FaultProxy> proxy;
  store::StoreSpec spec = SpecOf(a, &proxy);
  std::unique_ptr<ingest::PersistentStore> store;
  if (Status s = store::OpenStore(spec, &store); !s.ok()) Die("open " + spec.url, s);
  std::unique_ptr<cache::TreeCache> cache;
  if (Status s = bench::OpenBenchCache(dir, std::move(store), &cache, a.Optional("kv-options"));
      !s.ok())
    Die("cache", s);
  if (proxy != nullptr && !writeback) proxy->ClearRequests();  // the load only
  Clock::time_point t0 = Clock::now();
  if (Status s = cache->Load(tree); !s.ok()) Die("load " + tree, s);
  double seconds = SecondsSince(t0);
  StatFsInfo st;
  (void)cache->StatFs(&st);
  if (writeback) {
    // One changed file makes the whole tree dirty: it goes back whole.
    Attributes top, f;
    if (Status s = cache->Lookup(kRootIno, tree, &top); !s.ok()) Die("lookup", s);
    if (Status s = cache->Create(top.ino, "changed-by-s3-bench", NewObject{}, true, &f); !s.ok())
      Die("create", s);
    if (Status s = cache->Write(f.ino, 0, std::string(4096, 'x'), Stability::kStable, &f); !s.ok())
      Die("write", s);
    if (proxy != nullptr) proxy->ClearRequests();
    t0 = Clock::now();
    bool written = false;
    if (Status s = cache->Flush(tree, &written); !s.ok() || !written) Die("flush " + tree, s);
    seconds = SecondsSince(t0);
  }
  std::printf(
      "{\"phase\": \"%s\", \"tree\": \"%s\", \"seconds\": %.3f, \"bytes\": %llu, "
      "\"inodes\": %llu%s%s}\n",
      writeback ? "writeback" : "load", tree.c_str(), seconds,
      static_cast<unsigned long long>(st.used_bytes),
      static_cast<unsigned long long>(st.used_inodes), proxy ? ", " : "",
      proxy ? Json(Count(*proxy)).c_str() : "");
  return 0;
}

int List(const Args& a) {
  std::unique_ptr<s3_test::FaultProxy> proxy;
  store::StoreSpec spec = SpecOf(a, &proxy);
  std::unique_ptr<ingest::PersistentStore> store;
  if (Status s = store::OpenStore(spec, &store); !s.ok()) Die("open " + spec.url, s);
  if (proxy != nullptr) proxy->ClearRequests();
  std::vector<store::ObjectInfo> objects;
  Clock::time_point t0 = Clock::now();
  if (Status s = store->List(&objects); !s.ok()) Die("list", s);
  std::printf("{\"phase\": \"list\", \"objects\": %zu, \"seconds\": %.3f%s%s}\n", objects.size(),
              SecondsSince(t0), proxy ? ", " : "", proxy ? Json(Count(*proxy)).c_str() : "");
  return 0;
}

int Startup(const Args& a) {
  const std::string dir = a.Get("dir");
  std::filesystem::remove_all(dir);
  std::unique_ptr<s3_test::FaultProxy> proxy;
  store::StoreSpec spec = SpecOf(a, &proxy);
  for (const char* phase : {"first_start", "restart"}) {
    Clock::time_point t0 = Clock::now();
    std::unique_ptr<ingest::PersistentStore> store;
    if (Status s = store::OpenStore(spec, &store); !s.ok()) Die("open " + spec.url, s);
    std::unique_ptr<cache::TreeCache> cache;
    if (Status s = bench::OpenBenchCache(dir, std::move(store), &cache); !s.ok()) Die("cache", s);
    const double seconds = SecondsSince(t0);
    cache::QuotaInfo q;
    (void)cache->Quota(&q);
    std::printf("{\"phase\": \"%s\", \"trees\": %llu, \"seconds\": %.3f}\n", phase,
                static_cast<unsigned long long>(q.trees), seconds);
    std::fflush(stdout);
  }
  return 0;
}

int Put(const Args& a) {
  std::unique_ptr<s3_test::FaultProxy> proxy;
  store::StoreSpec spec = SpecOf(a, &proxy);
  std::unique_ptr<ingest::PersistentStore> store;
  if (Status s = store::OpenStore(spec, &store); !s.ok()) Die("open " + spec.url, s);
  std::ifstream in(a.Get("file"), std::ios::binary);
  if (!in) Die("cannot read " + a.Get("file"));
  std::unique_ptr<store::ObjectWriter> w;
  if (Status s = store->OpenWrite(a.Get("object"), &w); !s.ok()) Die("write", s);
  std::string buf(8 << 20, '\0');
  Clock::time_point t0 = Clock::now();
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() == 0) break;
    if (Status s = w->Append(std::string_view(buf.data(), in.gcount())); !s.ok()) Die("put", s);
  }
  if (Status s = w->Commit(); !s.ok()) Die("commit", s);
  std::printf("{\"phase\": \"put\", \"bytes\": %llu, \"seconds\": %.3f}\n",
              static_cast<unsigned long long>(w->size()), SecondsSince(t0));
  return 0;
}

std::unique_ptr<S3Client> Client(const Args& a, const std::string& endpoint) {
  store::s3::S3ClientOptions o;
  o.endpoint = endpoint;
  o.bucket = a.Get("bucket");
  if (Status s = store::s3::FindCredentials("", &o.credentials); !s.ok()) Die("credentials", s);
  return std::make_unique<S3Client>(o);
}

// Runs work(i) for i in [0, n) on `threads` threads.
void Parallel(size_t n, int threads, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < n;) work(i);
    });
  }
  for (std::thread& t : pool) t.join();
}

int Fill(const Args& a) {
  auto client = Client(a, a.Get("endpoint"));
  S3Request bucket;
  bucket.method = "PUT";
  S3Response resp;
  (void)client->Perform(bucket, &resp);  // may exist
  const std::string prefix = a.Get("prefix");
  const size_t n = std::strtoull(a.Get("objects").c_str(), nullptr, 10);
  std::atomic<int> failed{0};
  Clock::time_point t0 = Clock::now();
  Parallel(n, std::atoi(a.Get("threads", "16").c_str()), [&](size_t i) {
    char name[64];
    std::snprintf(name, sizeof(name), "/run-%07zu.tar", i);
    S3Request req;
    req.method = "PUT";
    req.key = prefix + name;
    req.body = "x";
    S3Response r;
    if (!client->Perform(req, &r).ok()) ++failed;
  });
  if (failed > 0) Die(std::to_string(failed.load()) + " PUTs failed");
  std::printf("{\"phase\": \"fill\", \"objects\": %zu, \"seconds\": %.3f}\n", n, SecondsSince(t0));
  return 0;
}

int PutFiles(const Args& a) {
  auto client = Client(a, a.Get("endpoint"));
  S3Request bucket;
  bucket.method = "PUT";
  S3Response resp;
  (void)client->Perform(bucket, &resp);
  const std::string from = a.Get("from"), prefix = a.Get("prefix");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(from)) {
    if (e.is_symlink() || !e.is_regular_file()) continue;
    files.push_back(e.path());
  }
  std::atomic<int> failed{0};
  std::atomic<uint64_t> bytes{0};
  Clock::time_point t0 = Clock::now();
  Parallel(files.size(), std::atoi(a.Get("threads", "16").c_str()), [&](size_t i) {
    std::ifstream in(files[i], std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    S3Request req;
    req.method = "PUT";
    req.key = prefix + "/" + std::filesystem::relative(files[i], from).string();
    req.body = data;
    S3Response r;
    if (!client->Perform(req, &r).ok()) ++failed;
    bytes += data.size();
  });
  if (failed > 0) Die(std::to_string(failed.load()) + " PUTs failed");
  std::printf("{\"phase\": \"put_files\", \"files\": %zu, \"bytes\": %llu, \"seconds\": %.3f}\n",
              files.size(), static_cast<unsigned long long>(bytes.load()), SecondsSince(t0));
  return 0;
}

int ReadFiles(const Args& a) {
  std::unique_ptr<s3_test::FaultProxy> proxy;
  std::string endpoint = a.Get("endpoint");
  if (a.count) {
    const size_t host = endpoint.find("://") + 3, colon = endpoint.rfind(':');
    if (Status s = s3_test::FaultProxy::Start(endpoint.substr(host, colon - host),
                                              std::atoi(endpoint.c_str() + colon + 1), "", &proxy);
        !s.ok())
      Die("proxy", s);
    endpoint = proxy->endpoint();
  }
  auto client = Client(a, endpoint);
  // Directories are listed as they are found (delimiter '/', pages of
  // 1,000), files read as they are listed, on `threads` threads.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<bool, std::string>> work{{true, a.Get("prefix") + "/"}};  // (dir?, key)
  int busy = 0;
  std::atomic<uint64_t> files{0}, dirs{0}, bytes{0};
  std::atomic<int> failed{0};
  Clock::time_point t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0, n = std::atoi(a.Get("threads", "16").c_str()); t < n; ++t) {
    pool.emplace_back([&] {
      for (;;) {
        std::pair<bool, std::string> item;
        {
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return !work.empty() || busy == 0; });
          if (work.empty()) return;
          item = std::move(work.front());
          work.pop_front();
          ++busy;
        }
        std::vector<std::pair<bool, std::string>> found;
        if (item.first) {
          ++dirs;
          std::string token;
          do {
            S3Request req;
            req.query = {{"list-type", "2"},
                         {"prefix", item.second},
                         {"delimiter", "/"},
                         {"encoding-type", "url"}};
            if (!token.empty()) req.query.emplace_back("continuation-token", token);
            S3Response r;
            if (!client->Perform(req, &r).ok()) {
              ++failed;
              break;
            }
            pugi::xml_document doc;
            doc.load_buffer(r.body.data(), r.body.size());
            pugi::xml_node res = doc.child("ListBucketResult");
            for (pugi::xml_node c : res.children("Contents")) {
              found.emplace_back(false, store::s3::UriDecode(c.child_value("Key"), true));
            }
            for (pugi::xml_node p : res.children("CommonPrefixes")) {
              found.emplace_back(true, store::s3::UriDecode(p.child_value("Prefix"), true));
            }
            token = std::string(res.child_value("IsTruncated")) == "true"
                        ? res.child_value("NextContinuationToken")
                        : "";
          } while (!token.empty());
        } else {
          S3Request req;
          req.key = item.second;
          uint64_t got = 0;
          req.on_body = [&](std::string_view d) {
            got += d.size();
            return true;
          };
          S3Response r;
          if (!client->Perform(req, &r).ok()) ++failed;
          ++files;
          bytes += got;
        }
        {
          std::lock_guard<std::mutex> l(mu);
          for (auto& f : found) work.push_back(std::move(f));
          --busy;
        }
        cv.notify_all();
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failed > 0) Die(std::to_string(failed.load()) + " requests failed");
  std::printf(
      "{\"phase\": \"read_files\", \"files\": %llu, \"directories\": %llu, \"bytes\": %llu, "
      "\"seconds\": %.3f%s%s}\n",
      static_cast<unsigned long long>(files.load()), static_cast<unsigned long long>(dirs.load()),
      static_cast<unsigned long long>(bytes.load()), SecondsSince(t0), proxy ? ", " : "",
      proxy ? Json(Count(*proxy)).c_str() : "");
  return 0;
}

int Main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  if (a.command == "load") return Load(a, false);
  if (a.command == "writeback") return Load(a, true);
  if (a.command == "list") return List(a);
  if (a.command == "startup") return Startup(a);
  if (a.command == "put") return Put(a);
  if (a.command == "fill") return Fill(a);
  if (a.command == "put-files") return PutFiles(a);
  if (a.command == "read-files") return ReadFiles(a);
  Die("unknown command " + a.command);
}

}  // namespace
}  // namespace kvfs

int main(int argc, char** argv) { return kvfs::Main(argc, argv); }
