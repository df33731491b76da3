// Object streams that count the bytes passing through them into a
// TransferProgress: how ingest and export report how far they are.
#pragma once

#include <memory>

#include "progress/transfer_progress.h"
#include "store/persistent_store.h"

namespace kvfs::progress {

// Reads from `in`, adding every byte read to `progress` (not owned; must
// outlive the reader). size() is in's.
std::unique_ptr<store::ObjectReader> CountingReader(std::unique_ptr<store::ObjectReader> in,
                                                    TransferProgress* progress);

// Appends to `out` (not owned), adding every byte appended to `progress` (not
// owned). Commit() commits `out`. Both must outlive the writer.
class CountingWriter : public store::ObjectWriter {
 public:
  CountingWriter(store::ObjectWriter* out, TransferProgress* progress)
      : out_(out), progress_(progress) {}
  Status Append(std::string_view data) override;
  Status Commit() override { return out_->Commit(); }
  uint64_t size() const override { return out_->size(); }

 private:
  store::ObjectWriter* const out_;
  TransferProgress* const progress_;
};

}  // namespace kvfs::progress
