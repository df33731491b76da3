// cluster_bench: issue 16's measurements (docs/benchmarks.md, "Coordination
// through etcd"); bench/cluster_bench.sh runs it inside private namespaces
// with an etcd it started. Prints one JSON line per result.
//
//   cluster_bench throughput --tarball=FILE --client=NFS_BENCH_CLIENT --etcd=etcd://H:P
//                 --work=DIR [--layouts=1x2,2x2,3x2] [--fsal-dir=DIR]
//     For each layout SxC: S ganesha.nfsd + FSAL_KVFS (127.0.0.2, .3, ...,
//     NFSv4, each its own RocksDB under DIR) over one directory store
//     holding FILE as its only tarball, coordinated through etcd (a fresh
//     prefix per layout), and C client processes per server
//     (nfs_bench_client --connect, NFSv4, each reading a disjoint share of
//     the files by path and checking every byte). Two passes: cold (fresh
//     servers, page cache dropped: each server loads the tree from the store
//     at its clients' first touch, inside the timed pass) and warm (the same
//     again). Every client's pass starts at once; a pass ends when the last
//     client is done. Also: each server's and the clients' CPU seconds in
//     the pass (/proc/PID/stat), the load average before and after.
//
//   cluster_bench coordcost --tarball=FILE --etcd=etcd://H:P --work=DIR [--rounds=5]
//     What coordination adds to a load and to a write-back: the cache
//     manager (as a server runs it) over a directory store holding FILE,
//     without a coordination (the store's own claims) and with etcd (a fresh
//     prefix per round: this server is the first to see the tarball), side
//     by side, alternating which goes first. Per round and mode: open (the
//     cache lists the store; with etcd, numbers the version), load (page
//     cache dropped first), change (one new file at the top of the tree:
//     with etcd, taking ownership), flush (the write-back of the whole tree)
//     and close. Milliseconds, and the requests etcd served during each
//     (its /metrics counter grpc_server_started_total, by method).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <curl/curl.h>

#include "bench/bench_cache.h"
#include "bench/bench_program.h"
#include "bench/host_probe.h"
#include "coord/coordination.h"
#include "store/store.h"
#include "tests/e2e/ganesha_server.h"
#include "tests/fsal/fsal_test_util.h"

namespace kvfs::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// --name=value flags.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      const size_t eq = a.find('=');
      if (a.rfind("--", 0) != 0 || eq == std::string::npos) Die("bad argument " + a);
      values_[a.substr(2, eq - 2)] = a.substr(eq + 1);
    }
  }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    if (it != values_.end()) return it->second;
    if (fallback.empty()) Die("--" + name + " is required");
    return fallback;
  }

 private:
  std::map<std::string, std::string> values_;
};

// The first three numbers of /proc/loadavg.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// dir/NAME.tar as a hard link to `tarball` (a copy across file systems):
// a store holding the one tarball. Returns NAME.
std::string StoreWithTarball(const std::string& tarball, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string name = std::filesystem::path(tarball).stem().string();
  const std::string dest = dir + "/" + name + ".tar";
  std::error_code ec;
  std::filesystem::create_hard_link(tarball, dest, ec);
  if (ec) std::filesystem::copy_file(tarball, dest);
  return name;
}

size_t AppendTo(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Requests etcd has started serving so far, by method (its /metrics:
// grpc_server_started_total; the JSON gateway forwards each HTTP request
// as one gRPC call).
std::map<std::string, uint64_t> EtcdRequests(const std::string& metrics_url) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, metrics_url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendTo);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) Die("GET " + metrics_url + ": " + curl_easy_strerror(rc));
  std::map<std::string, uint64_t> out;
  std::istringstream lines(body);
  std::string line;
  const std::string kPrefix = "grpc_server_started_total{", kMethod = "grpc_method=\"";
  while (std::getline(lines, line)) {
    if (line.rfind(kPrefix, 0) != 0) continue;
    const size_t m = line.find(kMethod), end = line.find('"', m + kMethod.size());
    if (m == std::string::npos || end == std::string::npos) continue;
    out[line.substr(m + kMethod.size(), end - m - kMethod.size())] +=
        std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

// http://HOST:PORT/metrics of --etcd=etcd://HOST:PORT (one member, no
// prefix: the benchmark adds its own prefixes).
std::string MetricsUrl(const Args& a) {
  const std::string etcd = a.Get("etcd");
  if (etcd.rfind("etcd://", 0) != 0 || etcd.find('/', 7) != std::string::npos ||
      etcd.find(',') != std::string::npos) {
    Die("--etcd is etcd://HOST:PORT (one member, no prefix)");
  }
  return "http://" + etcd.substr(7) + "/metrics";
}

// Requests etcd served so far, all methods.
uint64_t EtcdRequestTotal(const std::string& metrics_url) {
  uint64_t total = 0;
  for (const auto& [method, n] : EtcdRequests(metrics_url)) total += n;
  return total;
}

// ---- throughput -------------------------------------------------------------------------

// One nfs_bench_client process reading its share through one server.
struct ClientProcess {
  pid_t pid = -1;
  int server = 0;
  FILE* to = nullptr;    // its stdin
  FILE* from = nullptr;  // its stdout
};

ClientProcess SpawnClient(const std::vector<std::string>& argv, int server) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) Die("pipe");
  ClientProcess c;
  c.server = server;
  c.pid = fork();
  if (c.pid < 0) Die("fork");
  if (c.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]), close(out[1]);
  c.to = fdopen(in[1], "w");
  c.from = fdopen(out[0], "r");
  return c;
}

// The next line the client prints ("" at its end).
std::string ReadLine(ClientProcess* c) {
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, c->from);
  std::string s = n > 0 ? std::string(line, static_cast<size_t>(n)) : "";
  std::free(line);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool RunLayout(const Args& a, int servers, int per_server) {
  const std::string label = std::to_string(servers) + "x" + std::to_string(per_server);
  const std::string dir = a.Get("work") + "/" + label;
  std::filesystem::remove_all(dir);
  const std::string tarball = a.Get("tarball");
  const std::string name = StoreWithTarball(tarball, dir + "/store");
  const std::string coordination = a.Get("etcd") + "/cluster-" + label;

  std::vector<std::unique_ptr<e2e::GaneshaServer>> nfsd;
  for (int i = 0; i < servers; ++i) {
    fsal_test::KvfsExport e;
    e.db_path = dir + "/db" + std::to_string(i);
    e.capacity_bytes = 1ull << 40;
    e.capacity_inodes = 1ull << 32;
    e.fsal_extra = "persistent_store = \"" + dir + "/store\";\ncache_refresh_seconds = 0;\n" +
                   "cache_writeback_delay_seconds = 0;\ncoordination = \"" + coordination + "\";\n";
    e2e::GaneshaOptions o =
        fsal_test::KvfsServerOptions({e}, a.Get("fsal-dir", KVFS_E2E_FSAL_DIRS));
    o.bind_addr = "127.0.0." + std::to_string(2 + i);
    o.nfsv3 = false;
    o.work_dir = dir + "/nfsd" + std::to_string(i);
    o.start_timeout = std::chrono::milliseconds(120000);
    nfsd.push_back(std::make_unique<e2e::GaneshaServer>(o));
    if (Status s = nfsd.back()->Start(); !s.ok()) Die("server " + o.bind_addr, s);
  }

  const int total = servers * per_server;
  std::vector<ClientProcess> clients;
  for (int i = 0; i < total; ++i) {
    const int s = i / per_server;
    clients.push_back(SpawnClient(
        {a.Get("client"), "--tarball=" + tarball, "--connect=" + nfsd[s]->address(),
         "--mount=/kvfs", "--version=4", "--tree=" + name,
         "--share=" + std::to_string(i) + "/" + std::to_string(total), "--rounds=2", "--wait",
         "--label=server" + std::to_string(s) + "-client" + std::to_string(i)},
        s));
  }
  bool ok = true;
  for (const char* pass : {"cold", "warm"}) {
    for (ClientProcess& c : clients) {
      if (ReadLine(&c) != "ready") Die("client " + std::to_string(c.pid) + " is not ready");
    }
    // Cold: nothing of the store's tarball in the page cache (the clients
    // just read it to know the expected contents).
    if (std::string(pass) == "cold" && !DropPageCache()) Die("cannot drop the page cache");
    const std::string load_before = LoadAverage();
    const uint64_t etcd_before = EtcdRequestTotal(MetricsUrl(a));
    std::vector<double> cpu0;
    for (auto& s : nfsd) cpu0.push_back(ProcessCpuSeconds(s->pid()));
    double client_cpu0 = 0;
    for (ClientProcess& c : clients) client_cpu0 += ProcessCpuSeconds(c.pid);
    const Clock::time_point t0 = Clock::now();
    for (ClientProcess& c : clients) {
      std::fputs("go\n", c.to);
      std::fflush(c.to);
    }
    Json per_server = Json::array();
    for (int i = 0; i < servers; ++i) {
      per_server.push_back(
          {{"address", nfsd[i]->address()}, {"files", 0}, {"bytes", 0}, {"seconds", 0.0}});
    }
    uint64_t files = 0, bytes = 0;
    bool pass_ok = true;
    std::string first_error;
    for (ClientProcess& c : clients) {
      const std::string line = ReadLine(&c);
      Json r = Json::parse(line, nullptr, false);
      if (r.is_discarded() || !r.contains("files")) Die("client said '" + line + "'");
      Json& ps = per_server[c.server];
      ps["files"] = ps["files"].get<uint64_t>() + r["files"].get<uint64_t>();
      ps["bytes"] = ps["bytes"].get<uint64_t>() + r["bytes"].get<uint64_t>();
      ps["seconds"] = std::max(ps["seconds"].get<double>(), r["seconds"].get<double>());
      files += r["files"].get<uint64_t>();
      bytes += r["bytes"].get<uint64_t>();
      if (!r["ok"].get<bool>()) {
        pass_ok = false;
        if (first_error.empty()) first_error = r.value("first_error", std::string("?"));
      }
    }
    const double seconds = SecondsSince(t0);
    for (int i = 0; i < servers; ++i) {
      per_server[i]["cpu_seconds"] = ProcessCpuSeconds(nfsd[i]->pid()) - cpu0[i];
    }
    double client_cpu = 0;
    for (ClientProcess& c : clients) client_cpu += ProcessCpuSeconds(c.pid);
    Json out = {{"bench", "throughput"},
                {"layout", label},
                {"servers", servers},
                {"clients", total},
                {"pass", pass},
                {"seconds", seconds},
                {"files", files},
                {"bytes", bytes},
                {"ok", pass_ok},
                {"per_server", per_server},
                {"client_cpu_seconds", client_cpu - client_cpu0},
                {"etcd_requests", EtcdRequestTotal(MetricsUrl(a)) - etcd_before},
                {"load_before", load_before},
                {"load_after", LoadAverage()}};
    if (!first_error.empty()) out["first_error"] = first_error;
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    ok = ok && pass_ok;
  }
  for (ClientProcess& c : clients) {
    std::fclose(c.to);
    std::fclose(c.from);
    int status = 0;
    waitpid(c.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
  }
  for (auto& s : nfsd) {
    if (Status st = s->Stop(); !st.ok()) {
      std::fprintf(stderr, "cluster_bench: stop %s: %s\n", s->address().c_str(),
                   st.ToString().c_str());
      ok = false;
    }
  }
  nfsd.clear();
  std::filesystem::remove_all(dir);
  return ok;
}

int Throughput(const Args& a) {
  std::stringstream layouts(a.Get("layouts", "1x2,2x2,3x2"));
  std::string layout;
  bool ok = true;
  while (std::getline(layouts, layout, ',')) {
    const size_t x = layout.find('x');
    if (x == std::string::npos) Die("a layout is SERVERSxCLIENTS_PER_SERVER, not " + layout);
    ok = RunLayout(a, std::stoi(layout.substr(0, x)), std::stoi(layout.substr(x + 1))) && ok;
  }
  return ok ? 0 : 1;
}

// ---- coordcost ----------------------------------------------------------------------------

// Counts etcd's requests and the time of one step.
class Step {
 public:
  Step(std::string metrics_url, Json* out) : url_(std::move(metrics_url)), out_(out) {
    before_ = EtcdRequests(url_);
    t0_ = Clock::now();
  }
  void Done(const std::string& name) {
    const double ms = SecondsSince(t0_) * 1000;
    Json by_method = Json::object();
    uint64_t total = 0;
    for (const auto& [method, n] : EtcdRequests(url_)) {
      const uint64_t d = n - before_[method];
      if (d == 0) continue;
      by_method[method] = d;
      total += d;
    }
    (*out_)[name] = {{"ms", ms}, {"etcd_requests", total}, {"by_method", by_method}};
    before_ = EtcdRequests(url_);
    t0_ = Clock::now();
  }

 private:
  std::string url_;
  Json* out_;
  std::map<std::string, uint64_t> before_;
  Clock::time_point t0_;
};

void CostRound(const Args& a, int round, bool with_etcd, const std::string& metrics_url) {
  const std::string mode = with_etcd ? "etcd" : "none";
  const std::string dir = a.Get("work") + "/cost-" + mode;
  std::filesystem::remove_all(dir);
  const std::string name = StoreWithTarball(a.Get("tarball"), dir + "/store");
  Json steps = Json::object();
  std::unique_ptr<cache::TreeCache> cache;
  {
    Step step(metrics_url, &steps);
    std::shared_ptr<coord::Coordination> coordination;
    if (with_etcd) {
      std::unique_ptr<coord::Coordination> c;
      const std::string url = a.Get("etcd") + "/cost-" + std::to_string(round);
      if (Status s = coord::OpenCoordination(url, nullptr, {}, &c); !s.ok()) Die(url, s);
      coordination = std::move(c);
    }
    std::unique_ptr<ingest::PersistentStore> store;
    if (Status s = store::OpenStore(store::StoreAt(dir + "/store"), &store); !s.ok()) {
      Die("store", s);
    }
    if (Status s = OpenBenchCache(dir, std::move(store), &cache, "", coordination); !s.ok()) {
      Die("cache", s);
    }
    step.Done("open");
    if (!DropPageCache()) Die("cannot drop the page cache");
    step = Step(metrics_url, &steps);
    if (Status s = cache->Load(name); !s.ok()) Die("load " + name, s);
    step.Done("load");
    Attributes top, f;
    if (Status s = cache->Lookup(kRootIno, name, &top); !s.ok()) Die("lookup", s);
    if (Status s = cache->Create(top.ino, "changed-by-cluster-bench", NewObject{}, true, &f);
        !s.ok()) {
      Die("create", s);
    }
    if (Status s = cache->Write(f.ino, 0, std::string(4096, 'x'), Stability::kStable, &f);
        !s.ok()) {
      Die("write", s);
    }
    step.Done("change");
    bool written = false;
    if (Status s = cache->Flush(name, &written); !s.ok() || !written) Die("flush " + name, s);
    step.Done("flush");
    cache.reset();
    coordination.reset();
    step.Done("close");
  }
  Json out = {{"bench", "coordcost"},
              {"round", round},
              {"coordination", mode},
              {"tree", name},
              {"steps", steps}};
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  std::filesystem::remove_all(dir);
}

int CoordCost(const Args& a) {
  const std::string metrics_url = MetricsUrl(a);
  const int rounds = std::stoi(a.Get("rounds", "5"));
  for (int r = 0; r < rounds; ++r) {
    // Alternate which goes first (the machine's state drifts).
    CostRound(a, r, r % 2 == 1, metrics_url);
    CostRound(a, r, r % 2 == 0, metrics_url);
  }
  return 0;
}

int Main(int argc, char** argv) {
  if (argc < 2) Die("usage: cluster_bench throughput|coordcost --flag=value... (see the source)");
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string command = argv[1];
  Args a(argc, argv);
  if (command == "throughput") return Throughput(a);
  if (command == "coordcost") return CoordCost(a);
  Die("unknown command " + command);
}

}  // namespace
}  // namespace kvfs::bench

int main(int argc, char** argv) { return kvfs::bench::Main(argc, argv); }
