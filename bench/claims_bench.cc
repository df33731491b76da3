// claims_bench: what a claim costs through each coordination, in one run:
// the persistent store's own claims (a directory: exclusive create + fsync)
// and etcd's (one create-if-absent transaction over the JSON gateway).
// bench/claims_bench.sh starts the etcd and runs it (docs/coordination.md).
//
//   claims_bench --store DIR --etcd etcd://HOST:PORT/PREFIX [--n N]
//
// Per coordination and operation: N calls one after another, then the
// median and 99th percentile in milliseconds, and etcd's ratio to the store.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coord/coordination.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles Measure(int n, const std::function<kvfs::Status(int)>& op) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto start = Clock::now();
    kvfs::Status s = op(i);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!s.ok()) {
      std::fprintf(stderr, "claims_bench: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

}  // namespace

int main(int argc, char** argv) {
  std::string store_dir, etcd;
  int n = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--store")) store_dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--etcd")) etcd = argv[i + 1];
    if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
  }
  if (store_dir.empty() || etcd.empty() || n <= 0) {
    std::fprintf(stderr,
                 "usage: claims_bench --store DIR --etcd etcd://HOST:PORT/PREFIX [--n N]\n");
    return 2;
  }
  std::unique_ptr<kvfs::store::PersistentStore> store;
  kvfs::Status s = kvfs::store::OpenStore(kvfs::store::StoreAt(store_dir), &store);
  if (!s.ok()) {
    std::fprintf(stderr, "claims_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::map<std::string, std::unique_ptr<kvfs::coord::Coordination>> coords;
  kvfs::coord::CoordinationOptions o;
  s = kvfs::coord::OpenCoordination("", store.get(), o, &coords["store"]);
  if (s.ok()) s = kvfs::coord::OpenCoordination(etcd, nullptr, o, &coords["etcd"]);
  if (!s.ok()) {
    std::fprintf(stderr, "claims_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  struct Op {
    const char* name;
    std::function<kvfs::Status(kvfs::coord::Coordination*, int)> run;
  };
  const std::vector<Op> ops = {
      {"ClaimName", [](auto* c, int i) { return c->ClaimName("t" + std::to_string(i), "bench"); }},
      {"IsNameClaimed",
       [](auto* c, int i) {
         bool claimed;
         return c->IsNameClaimed("t" + std::to_string(i), &claimed);
       }},
      {"ReleaseName", [](auto* c, int i) { return c->ReleaseName("t" + std::to_string(i)); }},
      {"ClaimRange", [](auto* c, int i) { return c->ClaimRange(1000 + i, "bench"); }},
      {"HighestClaimedRange",
       [](auto* c, int) {
         uint64_t r;
         return c->HighestClaimedRange(&r);
       }},
  };
  std::printf(
      "| operation (%d calls each) | store p50 ms | store p99 ms | etcd p50 ms | etcd p99 ms "
      "| etcd / store (p50) |\n|---|---|---|---|---|---|\n",
      n);
  for (const Op& op : ops) {
    Percentiles p[2];
    int k = 0;
    for (const char* which : {"store", "etcd"}) {
      kvfs::coord::Coordination* c = coords[which].get();
      p[k++] = Measure(n, [&](int i) { return op.run(c, i); });
    }
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.2fx |\n", op.name, p[0].p50, p[0].p99,
                p[1].p50, p[1].p99, p[1].p50 / std::max(p[0].p50, 1e-6));
  }

  // What only etcd does: numbering tarball versions (the same inode numbers
  // on every server) and tree ownership under a lease.
  kvfs::coord::Coordination* e = coords["etcd"].get();
  const int versions = n * 20;
  std::vector<kvfs::coord::TarballVersion> vs;
  for (int i = 0; i < versions; ++i) {
    vs.push_back({"tree" + std::to_string(i) + ".tar", uint64_t(i) + 1});
  }
  std::vector<uint64_t> ranges;
  auto start = Clock::now();
  s = e->VersionRanges(vs, "bench", &ranges);
  const double numbering = std::chrono::duration<double>(Clock::now() - start).count();
  std::unique_ptr<kvfs::coord::Coordination> fresh;
  if (s.ok()) s = kvfs::coord::OpenCoordination(etcd, nullptr, o, &fresh);
  start = Clock::now();
  if (s.ok()) s = fresh->VersionRanges({vs[0]}, "bench", &ranges);
  const double reading = std::chrono::duration<double>(Clock::now() - start).count();
  if (!s.ok()) {
    std::fprintf(stderr, "claims_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("\n| etcd only | count | seconds | per item ms |\n|---|---|---|---|\n");
  std::printf("| numbering new tarball versions (a first start) | %d | %.3f | %.4f |\n", versions,
              numbering, numbering * 1000 / versions);
  std::printf("| a fresh server reading every numbered version | %d | %.3f | %.4f |\n", versions,
              reading, reading * 1000 / versions);
  const Percentiles acquire =
      Measure(n, [&](int i) { return e->AcquireTree("t" + std::to_string(i), "bench"); });
  const Percentiles owned =
      Measure(n, [&](int i) { return e->AcquireTree("t" + std::to_string(i), "bench"); });
  const Percentiles verify =
      Measure(n, [&](int i) { return e->VerifyTreeOwned("t" + std::to_string(i)); });
  const Percentiles release =
      Measure(n, [&](int i) { return e->ReleaseTree("t" + std::to_string(i)); });
  std::printf("\n| etcd ownership (%d calls each) | p50 ms | p99 ms |\n|---|---|---|\n", n);
  std::printf("| AcquireTree (the first change of a tree) | %.3f | %.3f |\n", acquire.p50,
              acquire.p99);
  std::printf("| AcquireTree of a tree owned already (every change) | %.4f | %.4f |\n", owned.p50,
              owned.p99);
  std::printf("| VerifyTreeOwned (every write-back) | %.3f | %.3f |\n", verify.p50, verify.p99);
  std::printf("| ReleaseTree (an eviction) | %.3f | %.3f |\n", release.p50, release.p99);
  return 0;
}
