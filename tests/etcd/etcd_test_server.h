// The etcd servers the tests run against.
//
// Most tests share one etcd that a CTest fixture starts once per run
// (tests/etcd/etcd-fixture.sh, in a network namespace of its own, described
// in $KVFS_ETCD_SERVER/server.env): JoinSharedEtcd finds it and moves the
// calling thread into its namespace. Tests that stop and restart etcd run in
// private namespaces of their own (ci/run-in-namespace.sh) and start their
// own cluster there with EtcdCluster.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace kvfs::etcd_test {

// Finds the shared etcd and enters its network namespace (setns: the
// calling thread, and the threads it starts afterwards, then reach it on
// loopback). *endpoints gets its client URLs. A clear error naming the
// fixture when it is not running.
Status JoinSharedEtcd(std::vector<std::string>* endpoints);

// A cluster of this test's own, in the current network namespace, run with
// tests/etcd/etcd-server.sh (whose members die with the namespace).
class EtcdCluster {
 public:
  EtcdCluster() = default;
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;
  // Stop()s.
  ~EtcdCluster();
  // Stops every member (SIGKILL), so their ports are free for the next
  // cluster.
  Status Stop();
  // Starts `members` (1 or 3) members with their data under `dir`.
  static Status Start(const std::string& dir, int members, EtcdCluster* out);
  // Stops member i with signal `signal` ("TERM", "KILL").
  Status StopMember(int i, const std::string& signal = "TERM");
  // Starts members `which` again on their data; returns when each answers.
  Status StartMembers(const std::vector<int>& which);
  // Sets *i to the index of the member that leads the cluster now (waits
  // for an election, up to 30 s).
  Status Leader(int* i);
  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  Status Run(const std::string& args, std::string* out = nullptr);
  std::string dir_;
  std::vector<std::string> endpoints_;
};

}  // namespace kvfs::etcd_test
