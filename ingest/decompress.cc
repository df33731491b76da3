#include "ingest/decompress.h"

#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace kvfs::ingest {

namespace {

constexpr size_t kInputBuffer = 1 << 20;

enum class Format { kNone, kGzip, kXz, kZstd };

Format Detect(const unsigned char* p, size_t n) {
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return Format::kGzip;
  if (n >= 6 && std::memcmp(p,
                            "\xfd"
                            "7zXZ\0",
                            6) == 0)
    return Format::kXz;
  if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
    return Format::kZstd;
  }
  return Format::kNone;
}

// The input side shared by the decoders: a buffer refilled from `in`.
class Input {
 public:
  explicit Input(std::unique_ptr<ObjectReader> in) : in_(std::move(in)), buf_(kInputBuffer) {}

  // Reads the first bytes (at least `n` unless the object is shorter) into
  // the buffer without consuming them.
  Status Peek(size_t n) {
    while (size_ < n && !eof_) KVFS_RETURN_IF_ERROR(ReadMore());
    return Status::OK();
  }
  // Refills the buffer if it is empty; sets eof() at the end.
  Status Fill() {
    if (pos_ < size_ || eof_) return Status::OK();
    pos_ = size_ = 0;
    return ReadMore();
  }
  const unsigned char* data() const { return buf_.data() + pos_; }
  size_t available() const { return size_ - pos_; }
  void Consume(size_t n) { pos_ += n; }
  bool eof() const { return eof_ && pos_ == size_; }
  uint64_t size() const { return in_->size(); }
  ObjectReader* reader() { return in_.get(); }

 private:
  Status ReadMore() {
    size_t got = 0;
    KVFS_RETURN_IF_ERROR(
        in_->Read(reinterpret_cast<char*>(buf_.data()) + size_, buf_.size() - size_, &got));
    if (got == 0) eof_ = true;
    size_ += got;
    return Status::OK();
  }

  std::unique_ptr<ObjectReader> in_;
  std::vector<unsigned char> buf_;
  size_t pos_ = 0, size_ = 0;
  bool eof_ = false;
};

// Hands out what Input has, unchanged.
class Passthrough final : public ObjectReader {
 public:
  explicit Passthrough(Input in) : in_(std::move(in)) {}
  Status Read(char* buf, size_t n, size_t* got) override {
    KVFS_RETURN_IF_ERROR(in_.Fill());
    *got = std::min(n, in_.available());
    std::memcpy(buf, in_.data(), *got);
    in_.Consume(*got);
    return Status::OK();
  }
  uint64_t size() const override { return in_.size(); }

 private:
  Input in_;
};

Status Bad(const char* format, const std::string& what) {
  return Status::InvalidArgument(std::string("archive: ") + format + " data: " + what);
}

// True if the rest of the input is zero bytes (tape padding).
Status OnlyZerosLeft(Input* in, bool* zeros) {
  for (;;) {
    KVFS_RETURN_IF_ERROR(in->Fill());
    if (in->eof()) {
      *zeros = true;
      return Status::OK();
    }
    const unsigned char* p = in->data();
    if (std::any_of(p, p + in->available(), [](unsigned char c) { return c != 0; })) {
      *zeros = false;
      return Status::OK();
    }
    in->Consume(in->available());
  }
}

class GzipReader final : public ObjectReader {
 public:
  explicit GzipReader(Input in) : in_(std::move(in)) {}
  ~GzipReader() override {
    if (init_) inflateEnd(&z_);
  }

  Status Init() {
    std::memset(&z_, 0, sizeof(z_));
    // 16 + MAX_WBITS: gzip wrapper; zlib checks CRC-32 and length.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) return Status::FromErrno(ENOMEM, "zlib");
    init_ = true;
    return Status::OK();
  }

  Status Read(char* buf, size_t n, size_t* got) override {
    *got = 0;
    while (*got == 0 && !done_) {
      KVFS_RETURN_IF_ERROR(in_.Fill());
      if (in_.eof()) return Bad("gzip", "truncated");
      z_.next_in = const_cast<unsigned char*>(in_.data());
      z_.avail_in = static_cast<uInt>(std::min<size_t>(in_.available(), UINT32_MAX));
      z_.next_out = reinterpret_cast<unsigned char*>(buf);
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n, UINT32_MAX));
      const uInt before = z_.avail_in;
      int r = inflate(&z_, Z_NO_FLUSH);
      in_.Consume(before - z_.avail_in);
      *got = n - z_.avail_out;
      if (r == Z_STREAM_END) {
        KVFS_RETURN_IF_ERROR(NextMember());
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        return Bad("gzip", z_.msg != nullptr ? z_.msg : "corrupt");
      }
    }
    return Status::OK();
  }

  uint64_t size() const override { return in_.size(); }

 private:
  // After a member: another member, the end, or padding.
  Status NextMember() {
    KVFS_RETURN_IF_ERROR(in_.Peek(2));
    KVFS_RETURN_IF_ERROR(in_.Fill());
    if (in_.eof()) {
      done_ = true;
      return Status::OK();
    }
    if (in_.available() >= 2 && Detect(in_.data(), in_.available()) == Format::kGzip) {
      inflateReset(&z_);
      return Status::OK();
    }
    bool zeros;
    KVFS_RETURN_IF_ERROR(OnlyZerosLeft(&in_, &zeros));
    if (!zeros) return Bad("gzip", "trailing garbage after the compressed data");
    done_ = true;
    return Status::OK();
  }

  Input in_;
  z_stream z_;
  bool init_ = false;
  bool done_ = false;
};

class XzReader final : public ObjectReader {
 public:
  explicit XzReader(Input in) : in_(std::move(in)) {}
  ~XzReader() override { lzma_end(&s_); }

  Status Init(int threads) {
    lzma_mt mt;
    std::memset(&mt, 0, sizeof(mt));
    mt.flags = LZMA_CONCATENATED;
    mt.threads = static_cast<uint32_t>(threads);
    mt.timeout = 0;
    mt.memlimit_threading = 1ull << 30;
    mt.memlimit_stop = UINT64_MAX;
    if (lzma_stream_decoder_mt(&s_, &mt) != LZMA_OK) return Status::FromErrno(ENOMEM, "liblzma");
    return Status::OK();
  }

  Status Read(char* buf, size_t n, size_t* got) override {
    *got = 0;
    while (*got == 0 && !done_) {
      KVFS_RETURN_IF_ERROR(in_.Fill());
      s_.next_in = in_.data();
      s_.avail_in = in_.available();
      s_.next_out = reinterpret_cast<uint8_t*>(buf);
      s_.avail_out = n;
      const size_t before = s_.avail_in;
      lzma_ret r = lzma_code(&s_, in_.eof() ? LZMA_FINISH : LZMA_RUN);
      in_.Consume(before - s_.avail_in);
      *got = n - s_.avail_out;
      if (r == LZMA_STREAM_END) {
        done_ = true;
      } else if (r == LZMA_BUF_ERROR && in_.eof()) {
        return Bad("xz", "truncated");
      } else if (r != LZMA_OK) {
        return Bad("xz", Describe(r));
      }
    }
    return Status::OK();
  }

  uint64_t size() const override { return in_.size(); }

 private:
  static std::string Describe(lzma_ret r) {
    switch (r) {
      case LZMA_DATA_ERROR:
        return "corrupt";
      case LZMA_FORMAT_ERROR:
        return "not xz";
      case LZMA_OPTIONS_ERROR:
        return "unsupported options";
      case LZMA_MEM_ERROR:
      case LZMA_MEMLIMIT_ERROR:
        return "out of memory";
      default:
        return "error " + std::to_string(static_cast<int>(r));
    }
  }

  Input in_;
  lzma_stream s_ = LZMA_STREAM_INIT;
  bool done_ = false;
};

class ZstdReader final : public ObjectReader {
 public:
  explicit ZstdReader(Input in) : in_(std::move(in)), d_(ZSTD_createDStream()) {}
  ~ZstdReader() override { ZSTD_freeDStream(d_); }

  Status Init() {
    if (d_ == nullptr) return Status::FromErrno(ENOMEM, "libzstd");
    return Status::OK();
  }

  Status Read(char* buf, size_t n, size_t* got) override {
    *got = 0;
    while (*got == 0) {
      KVFS_RETURN_IF_ERROR(in_.Fill());
      if (in_.eof()) {
        // The end: fine between frames, truncation inside one.
        if (in_frame_) return Bad("zstd", "truncated");
        return Status::OK();
      }
      ZSTD_inBuffer input{in_.data(), in_.available(), 0};
      ZSTD_outBuffer output{buf, n, 0};
      size_t r = ZSTD_decompressStream(d_, &output, &input);
      in_.Consume(input.pos);
      *got = output.pos;
      if (ZSTD_isError(r)) return Bad("zstd", ZSTD_getErrorName(r));
      in_frame_ = r != 0;
    }
    return Status::OK();
  }

  uint64_t size() const override { return in_.size(); }

 private:
  Input in_;
  ZSTD_DStream* d_;
  bool in_frame_ = false;
};

}  // namespace

Status OpenDecompressor(std::unique_ptr<ObjectReader> in, int threads,
                        std::unique_ptr<ObjectReader>* out) {
  Input input(std::move(in));
  KVFS_RETURN_IF_ERROR(input.Peek(6));
  switch (Detect(input.data(), input.available())) {
    case Format::kGzip: {
      auto r = std::make_unique<GzipReader>(std::move(input));
      KVFS_RETURN_IF_ERROR(r->Init());
      *out = std::move(r);
      return Status::OK();
    }
    case Format::kXz: {
      if (threads <= 0)
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      auto r = std::make_unique<XzReader>(std::move(input));
      KVFS_RETURN_IF_ERROR(r->Init(threads));
      *out = std::move(r);
      return Status::OK();
    }
    case Format::kZstd: {
      auto r = std::make_unique<ZstdReader>(std::move(input));
      KVFS_RETURN_IF_ERROR(r->Init());
      *out = std::move(r);
      return Status::OK();
    }
    case Format::kNone:
      break;
  }
  *out = std::make_unique<Passthrough>(std::move(input));
  return Status::OK();
}

}  // namespace kvfs::ingest
