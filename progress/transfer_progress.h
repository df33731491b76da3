// Progress of long transfers (a tarball loaded, a tree written back) as the
// operator sees it: bytes done of the total, rate and time left.
//
// The thread doing a transfer adds to its TransferProgress; any other thread
// reads a ProgressSnapshot of it at any time, through the ProgressRegistry of
// the process (the server answers `kvfs cache list` and the progress
// requests of `kvfs-ingest` from it, docs/operations.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kvfs::progress {

// A transfer at one moment.
struct ProgressSnapshot {
  std::string id;    // the key it is registered under
  std::string what;  // for people: "loading linux", "writing back linux"
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;  // 0: not known
  double seconds = 0;        // since it began

  // Bytes per second so far (0 before any time passed).
  double Rate() const;
  // Seconds left at the rate so far; negative when that cannot be told (no
  // total, nothing done yet, or more done than the total said).
  double EtaSeconds() const;
};

// "45.2 MiB of 120.0 MiB (37%), 12.1 MiB/s, 6 s left", or without the parts
// that are not known ("45.2 MiB, 12.1 MiB/s").
std::string FormatProgress(const ProgressSnapshot& s);

// "45.2 MiB": binary units, one decimal above KiB.
std::string FormatBytes(uint64_t bytes);

// The counters of one transfer. Thread-safe: one thread adds, others read.
class TransferProgress {
 public:
  TransferProgress(std::string id, std::string what, uint64_t total_bytes);

  void Add(uint64_t bytes) { done_.fetch_add(bytes, std::memory_order_relaxed); }
  void SetTotal(uint64_t bytes) { total_.store(bytes, std::memory_order_relaxed); }
  ProgressSnapshot Snapshot() const;

 private:
  const std::string id_;
  const std::string what_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_;
};

// The transfers in progress in this process. Thread-safe.
class ProgressRegistry {
 public:
  // Unregisters its transfer when destroyed.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    ~Registration();
    // The transfer's counters; null for a default-constructed registration
    // (nothing registered: adding is then the caller's no-op).
    TransferProgress* get() const { return progress_.get(); }

   private:
    friend class ProgressRegistry;
    ProgressRegistry* registry_ = nullptr;
    std::shared_ptr<TransferProgress> progress_;
  };

  // Registers a transfer under `id` (replacing the view of an earlier one
  // of the same id, which stays valid for its owner).
  Registration Begin(const std::string& id, const std::string& what, uint64_t total_bytes);
  // The transfer registered under `id`; false if there is none (not begun,
  // or finished).
  bool Find(const std::string& id, ProgressSnapshot* out) const;
  // Every transfer in progress, by id.
  std::vector<ProgressSnapshot> List() const;

 private:
  void End(const std::shared_ptr<TransferProgress>& progress);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<TransferProgress>> transfers_;  // guarded by mu_
};

}  // namespace kvfs::progress
