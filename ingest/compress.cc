#include "ingest/compress.h"

#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace kvfs::ingest {

namespace {

// Compressed output is handed to the ObjectWriter in pieces of this size.
constexpr size_t kOutputBuffer = 1 << 20;

Status Failed(const char* format, const std::string& what) {
  return Status::IOError(std::string("compressing tarball (") + format + "): " + what);
}

class Plain final : public Compressor {
 public:
  explicit Plain(ObjectWriter* out) : out_(out) {}
  Status Write(std::string_view data) override { return out_->Append(data); }
  Status Finish() override { return Status::OK(); }

 private:
  ObjectWriter* const out_;
};

class GzipWriter final : public Compressor {
 public:
  explicit GzipWriter(ObjectWriter* out) : out_(out), buf_(kOutputBuffer) {}
  ~GzipWriter() override {
    if (init_) deflateEnd(&z_);
  }

  Status Init() {
    std::memset(&z_, 0, sizeof(z_));
    // 16 + MAX_WBITS: a gzip wrapper (header, CRC-32 and length trailer).
    if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return Status::FromErrno(ENOMEM, "zlib");
    }
    init_ = true;
    return Status::OK();
  }

  Status Write(std::string_view data) override {
    while (!data.empty()) {
      const size_t n = std::min<size_t>(data.size(), UINT32_MAX);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      z_.avail_in = static_cast<uInt>(n);
      KVFS_RETURN_IF_ERROR(Run(Z_NO_FLUSH));
      data.remove_prefix(n);
    }
    return Status::OK();
  }

  Status Finish() override { return Run(Z_FINISH); }

 private:
  // Deflates until the input is consumed (Z_NO_FLUSH) or the stream ends
  // (Z_FINISH), writing out every full output buffer.
  Status Run(int flush) {
    for (;;) {
      z_.next_out = buf_.data();
      z_.avail_out = static_cast<uInt>(buf_.size());
      const int r = deflate(&z_, flush);
      if (r == Z_STREAM_ERROR) return Failed("gzip", "deflate failed");
      const size_t have = buf_.size() - z_.avail_out;
      if (have > 0) {
        KVFS_RETURN_IF_ERROR(
            out_->Append(std::string_view(reinterpret_cast<char*>(buf_.data()), have)));
      }
      if (flush == Z_FINISH ? r == Z_STREAM_END : z_.avail_in == 0 && z_.avail_out != 0) {
        return Status::OK();
      }
    }
  }

  ObjectWriter* const out_;
  std::vector<Bytef> buf_;
  z_stream z_;
  bool init_ = false;
};

class ZstdWriter final : public Compressor {
 public:
  explicit ZstdWriter(ObjectWriter* out) : out_(out), buf_(ZSTD_CStreamOutSize()) {}
  ~ZstdWriter() override { ZSTD_freeCCtx(cctx_); }

  Status Init() {
    cctx_ = ZSTD_createCCtx();
    if (cctx_ == nullptr) return Status::FromErrno(ENOMEM, "zstd");
    // Frame checksums, so that readers (decompress.cc) detect corruption.
    const size_t r = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r)) return Failed("zstd", ZSTD_getErrorName(r));
    return Status::OK();
  }

  Status Write(std::string_view data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) KVFS_RETURN_IF_ERROR(Step(&in, ZSTD_e_continue, nullptr));
    return Status::OK();
  }

  Status Finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (bool done = false; !done;) KVFS_RETURN_IF_ERROR(Step(&in, ZSTD_e_end, &done));
    return Status::OK();
  }

 private:
  Status Step(ZSTD_inBuffer* in, ZSTD_EndDirective mode, bool* done) {
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    const size_t left = ZSTD_compressStream2(cctx_, &out, in, mode);
    if (ZSTD_isError(left)) return Failed("zstd", ZSTD_getErrorName(left));
    if (out.pos > 0) KVFS_RETURN_IF_ERROR(out_->Append(std::string_view(buf_.data(), out.pos)));
    if (done != nullptr) *done = left == 0;
    return Status::OK();
  }

  ObjectWriter* const out_;
  std::vector<char> buf_;
  ZSTD_CCtx* cctx_ = nullptr;
};

class XzWriter final : public Compressor {
 public:
  explicit XzWriter(ObjectWriter* out) : out_(out), buf_(kOutputBuffer) {}
  ~XzWriter() override { lzma_end(&s_); }

  Status Init(int threads) {
    lzma_mt mt;
    std::memset(&mt, 0, sizeof(mt));
    mt.threads = threads > 0 ? static_cast<uint32_t>(threads)
                             : std::max(1u, std::thread::hardware_concurrency());
    mt.preset = LZMA_PRESET_DEFAULT;
    mt.check = LZMA_CHECK_CRC64;
    if (lzma_stream_encoder_mt(&s_, &mt) != LZMA_OK) return Failed("xz", "encoder setup failed");
    return Status::OK();
  }

  Status Write(std::string_view data) override {
    s_.next_in = reinterpret_cast<const uint8_t*>(data.data());
    s_.avail_in = data.size();
    while (s_.avail_in > 0) KVFS_RETURN_IF_ERROR(Step(LZMA_RUN, nullptr));
    return Status::OK();
  }

  Status Finish() override {
    for (bool done = false; !done;) KVFS_RETURN_IF_ERROR(Step(LZMA_FINISH, &done));
    return Status::OK();
  }

 private:
  Status Step(lzma_action action, bool* done) {
    s_.next_out = buf_.data();
    s_.avail_out = buf_.size();
    const lzma_ret r = lzma_code(&s_, action);
    if (r != LZMA_OK && r != LZMA_STREAM_END) {
      return Failed("xz", "lzma_code error " + std::to_string(static_cast<int>(r)));
    }
    const size_t have = buf_.size() - s_.avail_out;
    if (have > 0) {
      KVFS_RETURN_IF_ERROR(
          out_->Append(std::string_view(reinterpret_cast<char*>(buf_.data()), have)));
    }
    if (done != nullptr) *done = r == LZMA_STREAM_END;
    return Status::OK();
  }

  ObjectWriter* const out_;
  std::vector<uint8_t> buf_;
  lzma_stream s_ = LZMA_STREAM_INIT;
};

}  // namespace

Status Compressor::Open(ObjectWriter* out, Compression compression, int threads,
                        std::unique_ptr<Compressor>* compressor) {
  switch (compression) {
    case Compression::kNone:
      *compressor = std::make_unique<Plain>(out);
      return Status::OK();
    case Compression::kGzip: {
      auto w = std::make_unique<GzipWriter>(out);
      KVFS_RETURN_IF_ERROR(w->Init());
      *compressor = std::move(w);
      return Status::OK();
    }
    case Compression::kZstd: {
      auto w = std::make_unique<ZstdWriter>(out);
      KVFS_RETURN_IF_ERROR(w->Init());
      *compressor = std::move(w);
      return Status::OK();
    }
    case Compression::kXz: {
      auto w = std::make_unique<XzWriter>(out);
      KVFS_RETURN_IF_ERROR(w->Init(threads));
      *compressor = std::move(w);
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown compression");
}

}  // namespace kvfs::ingest
