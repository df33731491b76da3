#include "fuse/inode_table.h"

namespace kvfs::fusefs {

void InodeTable::Add(Ino ino, std::string_view root_name) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> l(s.mu);
  Node& n = s.nodes[ino];
  n.lookups++;
  if (!root_name.empty()) n.root_name = root_name;
}

bool InodeTable::Forget(Ino ino, uint64_t n) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.nodes.find(ino);
  if (it == s.nodes.end()) return false;
  if (it->second.lookups > n) {
    it->second.lookups -= n;
    return true;
  }
  const bool exact = it->second.lookups == n;
  s.nodes.erase(it);
  return exact;
}

bool InodeTable::With(Ino ino, const std::function<void(Node&)>& fn) {
  Shard& s = ShardOf(ino);
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.nodes.find(ino);
  if (it == s.nodes.end()) return false;
  fn(it->second);
  return true;
}

size_t InodeTable::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    n += s.nodes.size();
  }
  return n;
}

std::vector<std::pair<Ino, std::string>> InodeTable::RootNames() const {
  std::vector<std::pair<Ino, std::string>> out;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    for (const auto& [ino, node] : s.nodes) {
      if (!node.root_name.empty()) out.emplace_back(ino, node.root_name);
    }
  }
  return out;
}

}  // namespace kvfs::fusefs
