#include "tests/etcd/etcd_test_server.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

#include "common/unique_fd.h"

namespace kvfs::etcd_test {

namespace {

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

Status JoinSharedEtcd(std::vector<std::string>* endpoints) {
  const char* dir = std::getenv("KVFS_ETCD_SERVER");
  if (dir == nullptr || dir[0] == '\0') {
    return Status::NotFound(
        "KVFS_ETCD_SERVER is not set: run the etcd tests through ctest (its fixture starts "
        "etcd), or start one with tests/etcd/etcd-fixture.sh start DIR and set "
        "KVFS_ETCD_SERVER=DIR");
  }
  const std::string file = std::string(dir) + "/server.env";
  std::ifstream in(file);
  if (!in) return Status::NotFound("no " + file + ": the etcd fixture is not running");
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  *endpoints = SplitCommas(env["endpoints"]);
  if (endpoints->empty() || env["netns"].empty()) return Status::IOError(file + " is incomplete");
  UniqueFd ns(::open(env["netns"].c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid() || ::setns(ns.get(), CLONE_NEWNET) != 0) {
    return Status::FromErrno(errno, "entering etcd's network namespace " + env["netns"]);
  }
  return Status::OK();
}

Status EtcdCluster::Run(const std::string& args, std::string* out) {
  const std::string cmd = std::string(KVFS_ETCD_SERVER_SCRIPT) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return Status::FromErrno(errno, "popen " + cmd);
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0) return Status::IOError(cmd + " failed: " + output);
  if (out != nullptr) *out = output;
  return Status::OK();
}

Status EtcdCluster::Start(const std::string& dir, int members, EtcdCluster* out) {
  out->dir_ = dir;
  KVFS_RETURN_IF_ERROR(out->Run("start " + dir + " " + std::to_string(members)));
  std::string urls;
  KVFS_RETURN_IF_ERROR(out->Run("endpoints " + dir, &urls));
  while (!urls.empty() && (urls.back() == '\n')) urls.pop_back();
  out->endpoints_ = SplitCommas(urls);
  return Status::OK();
}

EtcdCluster::~EtcdCluster() { (void)Stop(); }

Status EtcdCluster::Stop() {
  if (dir_.empty()) return Status::OK();
  Status s = Run("stop " + dir_);
  dir_.clear();
  return s;
}

Status EtcdCluster::StopMember(int i, const std::string& signal) {
  return Run("stop-member " + dir_ + " " + std::to_string(i) + " " + signal);
}

Status EtcdCluster::StartMembers(const std::vector<int>& which) {
  std::string args = "start-member " + dir_;
  for (int i : which) args += " " + std::to_string(i);
  return Run(args);
}

Status EtcdCluster::Leader(int* i) {
  std::string out;
  KVFS_RETURN_IF_ERROR(Run("leader " + dir_, &out));
  if (std::sscanf(out.c_str(), "%d", i) != 1 || *i < 0 || *i >= int(endpoints_.size())) {
    return Status::IOError("etcd-server.sh leader said '" + out + "'");
  }
  return Status::OK();
}

}  // namespace kvfs::etcd_test
