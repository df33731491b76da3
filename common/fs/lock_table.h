// LockTable: striped mutexes that serialize mutations of the same records.
//
// A mutation names the records it will read-modify-write by 64-bit lock ids
// (see FileSystemImpl: one id per entry bucket or detached inode). The ids map
// onto a fixed number of stripes; MultiLock locks the distinct stripes in
// ascending order, so any two MultiLocks can never deadlock. Unrelated records
// that share a stripe only wait for each other briefly. Readers take no locks.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace kvfs {

class LockTable {
 public:
  explicit LockTable(size_t stripes = 4096);
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  // Holds the stripes of a set of lock ids until destroyed.
  class MultiLock {
   public:
    MultiLock(LockTable* table, std::vector<uint64_t> ids);
    // Holds every stripe: waits for all lock holders and keeps everyone
    // else out (for operations on whole subtrees).
    explicit MultiLock(LockTable* table);
    ~MultiLock();
    MultiLock(const MultiLock&) = delete;
    MultiLock& operator=(const MultiLock&) = delete;

   private:
    LockTable* table_;
    std::vector<size_t> stripes_;  // sorted, distinct
  };

 private:
  size_t StripeOf(uint64_t id) const;

  std::unique_ptr<std::mutex[]> mutexes_;
  size_t stripes_;
};

}  // namespace kvfs
