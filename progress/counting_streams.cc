#include "progress/counting_streams.h"

namespace kvfs::progress {

namespace {

class CountingReaderImpl : public store::ObjectReader {
 public:
  CountingReaderImpl(std::unique_ptr<store::ObjectReader> in, TransferProgress* progress)
      : in_(std::move(in)), progress_(progress) {}

  Status Read(char* buf, size_t n, size_t* got) override {
    Status s = in_->Read(buf, n, got);
    if (s.ok()) progress_->Add(*got);
    return s;
  }
  uint64_t size() const override { return in_->size(); }

 private:
  const std::unique_ptr<store::ObjectReader> in_;
  TransferProgress* const progress_;
};

}  // namespace

std::unique_ptr<store::ObjectReader> CountingReader(std::unique_ptr<store::ObjectReader> in,
                                                    TransferProgress* progress) {
  return std::make_unique<CountingReaderImpl>(std::move(in), progress);
}

Status CountingWriter::Append(std::string_view data) {
  Status s = out_->Append(data);
  if (s.ok()) progress_->Add(data.size());
  return s;
}

}  // namespace kvfs::progress
