// ForwardingStore: a persistent store that passes every call to the store
// below it. Tests derive from it and override only the calls they count,
// slow down or fail.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/persistent_store.h"

namespace kvfs::store_test {

class ForwardingStore : public store::PersistentStore {
 public:
  explicit ForwardingStore(std::unique_ptr<store::PersistentStore> base) : base_(std::move(base)) {}

  Status List(std::vector<store::ObjectInfo>* out) override { return base_->List(out); }
  Status Stat(const std::string& name, store::ObjectInfo* out) override {
    return base_->Stat(name, out);
  }
  Status OpenRead(const std::string& name, std::unique_ptr<store::ObjectReader>* out) override {
    return base_->OpenRead(name, out);
  }
  Status OpenWrite(const std::string& name, std::unique_ptr<store::ObjectWriter>* out) override {
    return base_->OpenWrite(name, out);
  }
  Status Delete(const std::string& name) override { return base_->Delete(name); }
  Status ClaimRange(uint64_t range, std::string_view owner) override {
    return base_->ClaimRange(range, owner);
  }
  Status HighestClaimedRange(uint64_t* range) override { return base_->HighestClaimedRange(range); }
  Status ClaimName(const std::string& name, std::string_view owner) override {
    return base_->ClaimName(name, owner);
  }
  Status ReleaseName(const std::string& name) override { return base_->ReleaseName(name); }
  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    return base_->IsNameClaimed(name, claimed);
  }
  std::string Describe() const override { return base_->Describe(); }

 private:
  const std::unique_ptr<store::PersistentStore> base_;
};

}  // namespace kvfs::store_test
