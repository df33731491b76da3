#include "progress/transfer_progress.h"

#include <cmath>
#include <cstdio>

namespace kvfs::progress {

double ProgressSnapshot::Rate() const { return seconds > 0 ? done_bytes / seconds : 0; }

double ProgressSnapshot::EtaSeconds() const {
  const double rate = Rate();
  if (total_bytes == 0 || done_bytes == 0 || done_bytes > total_bytes || rate <= 0) return -1;
  return (total_bytes - done_bytes) / rate;
}

std::string FormatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = bytes / 1024.0;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

namespace {

std::string FormatDuration(double seconds) {
  const long s = std::lround(seconds);
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%ld s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%ld min %02ld s", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld h %02ld min", s / 3600, s / 60 % 60);
  }
  return buf;
}

}  // namespace

std::string FormatProgress(const ProgressSnapshot& s) {
  std::string out = FormatBytes(s.done_bytes);
  if (s.total_bytes != 0 && s.done_bytes <= s.total_bytes) {
    out += " of " + FormatBytes(s.total_bytes) + " (" +
           std::to_string(s.done_bytes * 100 / s.total_bytes) + "%)";
  }
  if (s.seconds > 0) out += ", " + FormatBytes(static_cast<uint64_t>(s.Rate())) + "/s";
  if (const double eta = s.EtaSeconds(); eta >= 0) out += ", " + FormatDuration(eta) + " left";
  return out;
}

TransferProgress::TransferProgress(std::string id, std::string what, uint64_t total_bytes)
    : id_(std::move(id)),
      what_(std::move(what)),
      start_(std::chrono::steady_clock::now()),
      total_(total_bytes) {}

ProgressSnapshot TransferProgress::Snapshot() const {
  ProgressSnapshot s;
  s.id = id_;
  s.what = what_;
  s.done_bytes = done_.load(std::memory_order_relaxed);
  s.total_bytes = total_.load(std::memory_order_relaxed);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s;
}

ProgressRegistry::Registration::Registration(Registration&& other) noexcept
    : registry_(other.registry_), progress_(std::move(other.progress_)) {
  other.registry_ = nullptr;
}

ProgressRegistry::Registration& ProgressRegistry::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    if (registry_ != nullptr && progress_) registry_->End(progress_);
    registry_ = other.registry_;
    progress_ = std::move(other.progress_);
    other.registry_ = nullptr;
  }
  return *this;
}

ProgressRegistry::Registration::~Registration() {
  if (registry_ != nullptr && progress_) registry_->End(progress_);
}

ProgressRegistry::Registration ProgressRegistry::Begin(const std::string& id,
                                                       const std::string& what,
                                                       uint64_t total_bytes) {
  Registration r;
  r.registry_ = this;
  r.progress_ = std::make_shared<TransferProgress>(id, what, total_bytes);
  std::lock_guard<std::mutex> l(mu_);
  transfers_[id] = r.progress_;
  return r;
}

void ProgressRegistry::End(const std::shared_ptr<TransferProgress>& progress) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string id = progress->Snapshot().id;
  auto it = transfers_.find(id);
  if (it != transfers_.end() && it->second == progress) transfers_.erase(it);
}

bool ProgressRegistry::Find(const std::string& id, ProgressSnapshot* out) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return false;
  *out = it->second->Snapshot();
  return true;
}

std::vector<ProgressSnapshot> ProgressRegistry::List() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<ProgressSnapshot> out;
  out.reserve(transfers_.size());
  for (const auto& [id, p] : transfers_) out.push_back(p->Snapshot());
  return out;
}

}  // namespace kvfs::progress
