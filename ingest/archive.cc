#include "ingest/archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <vector>

namespace kvfs::ingest {

namespace {

constexpr size_t kReadBuffer = 1 << 20;

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

Timespec ToTimespec(time_t sec, long nsec) {
  return Timespec{static_cast<int64_t>(sec), static_cast<uint32_t>(nsec)};
}

class LibarchiveReader final : public ArchiveReader {
 public:
  explicit LibarchiveReader(std::unique_ptr<ObjectReader> in)
      : in_(std::move(in)), buffer_(kReadBuffer) {}

  Status Init() {
    a_.reset(archive_read_new());
    if (!a_) return Status::FromErrno(ENOMEM, "archive_read_new");
    // Tar formats only; the common compressions, none through external
    // programs.
    archive_read_support_format_tar(a_.get());
    archive_read_support_format_gnutar(a_.get());
    archive_read_support_filter_gzip(a_.get());
    archive_read_support_filter_bzip2(a_.get());
    archive_read_support_filter_xz(a_.get());
    archive_read_support_filter_zstd(a_.get());
    archive_read_support_filter_lz4(a_.get());
    int r = archive_read_open(a_.get(), this, nullptr, &LibarchiveReader::ReadCallback, nullptr);
    if (r != ARCHIVE_OK) return Error("cannot read the tarball");
    return Status::OK();
  }

  Status Next(Member* m, bool* end) override {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(a_.get(), &e);
    if (r == ARCHIVE_EOF) {
      *end = true;
      return Status::OK();
    }
    // Names are bytes to us: that they cannot be shown in the process's
    // locale (C in a server) is no reason to refuse them; the UTF-8 forms
    // are read below. Any other warning is an error.
    if (r != ARCHIVE_OK && !(r == ARCHIVE_WARN && IsLocaleWarning())) {
      return Error("bad member header");
    }
    *end = false;
    const char* path = archive_entry_pathname(e);
    if (path == nullptr) path = archive_entry_pathname_utf8(e);
    if (path == nullptr) return Status::InvalidArgument("archive: member without a path");
    m->path = path;
    m->mode = static_cast<uint32_t>(archive_entry_perm(e)) & 07777;
    m->uid = static_cast<uint32_t>(archive_entry_uid(e));
    m->gid = static_cast<uint32_t>(archive_entry_gid(e));
    m->size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
    m->mtime = ToTimespec(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
    m->has_atime = archive_entry_atime_is_set(e) != 0;
    m->atime =
        m->has_atime ? ToTimespec(archive_entry_atime(e), archive_entry_atime_nsec(e)) : m->mtime;
    m->rdev = archive_entry_rdev(e);
    m->link_target.clear();
    if (const char* hard = archive_entry_hardlink(e)) {
      m->type = MemberType::kHardLink;
      m->link_target = hard;
      return Status::OK();
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        m->type = MemberType::kRegular;
        break;
      case AE_IFDIR:
        m->type = MemberType::kDirectory;
        break;
      case AE_IFLNK: {
        m->type = MemberType::kSymlink;
        const char* target = archive_entry_symlink(e);
        if (target == nullptr) target = archive_entry_symlink_utf8(e);
        if (target == nullptr) {
          return Status::InvalidArgument("archive: symlink '" + m->path + "' has no target");
        }
        m->link_target = target;
        break;
      }
      case AE_IFCHR:
        m->type = MemberType::kCharDevice;
        break;
      case AE_IFBLK:
        m->type = MemberType::kBlockDevice;
        break;
      case AE_IFIFO:
        m->type = MemberType::kFifo;
        break;
      case AE_IFSOCK:
        m->type = MemberType::kSocket;
        break;
      default:
        return Status::InvalidArgument("archive: member '" + m->path + "' has an unknown type");
    }
    return Status::OK();
  }

  Status ReadData(uint64_t* offset, std::string_view* data, bool* end) override {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a_.get(), &buf, &size, &off);
    if (r == ARCHIVE_EOF) {
      *end = true;
      return Status::OK();
    }
    if (r != ARCHIVE_OK) return Error("bad member contents");
    *end = false;
    *offset = static_cast<uint64_t>(off);
    *data = std::string_view(static_cast<const char*>(buf), size);
    return Status::OK();
  }

  uint64_t input_bytes() const override { return input_bytes_; }

 private:
  // The warning libarchive gives when a name stored as UTF-8 has no form
  // in the current locale ("Pathname can't be converted from UTF-8 to
  // current locale.", likewise Linkname, Uname, Gname).
  bool IsLocaleWarning() const {
    const char* msg = archive_error_string(a_.get());
    return msg != nullptr && std::string_view(msg).ends_with("to current locale.");
  }

  static la_ssize_t ReadCallback(struct archive* a, void* self, const void** buf) {
    auto* r = static_cast<LibarchiveReader*>(self);
    size_t got = 0;
    Status s = r->in_->Read(r->buffer_.data(), r->buffer_.size(), &got);
    if (!s.ok()) {
      r->read_error_ = s;
      archive_set_error(a, s.posix_errno(), "%s", s.ToString().c_str());
      return -1;
    }
    r->input_bytes_ += got;
    *buf = r->buffer_.data();
    return static_cast<la_ssize_t>(got);
  }

  // A libarchive failure: a read error of the input keeps its errno; any
  // other failure is bad input (EINVAL).
  Status Error(std::string_view what) {
    if (!read_error_.ok()) return read_error_;
    const char* msg = archive_error_string(a_.get());
    return Status::InvalidArgument("archive: " + std::string(what) + ": " +
                                   (msg != nullptr ? msg : "unknown error"));
  }

  std::unique_ptr<ObjectReader> in_;
  std::vector<char> buffer_;
  ArchivePtr a_;
  Status read_error_;
  uint64_t input_bytes_ = 0;
};

}  // namespace

Status ArchiveReader::Open(std::unique_ptr<ObjectReader> in, std::unique_ptr<ArchiveReader>* out) {
  auto r = std::make_unique<LibarchiveReader>(std::move(in));
  KVFS_RETURN_IF_ERROR(r->Init());
  *out = std::move(r);
  return Status::OK();
}

}  // namespace kvfs::ingest
