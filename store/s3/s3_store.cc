#include "store/s3/s3_store.h"

#include <curl/curl.h>
#include <xxhash.h>

#include <pugixml.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace kvfs::store::s3 {
namespace {

constexpr const char* kRangesDir = ".kvfs/ranges/";
constexpr const char* kNamesDir = ".kvfs/names/";
// A read fetches the object in ranges of this size, one GET each.
constexpr uint64_t kReadRange = 64 << 20;
// A reader buffers at most this much ahead of its caller.
constexpr size_t kReadAhead = 16 << 20;
// ListObjectsV2's largest page.
constexpr const char* kPageKeys = "1000";

// "2026-12-04T14:43:02.502Z" -> seconds since the epoch; -1 if malformed.
int64_t ParseIsoTime(const std::string& s) {
  std::tm tm{};
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec) != 6) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

// "Fri, 04 Dec 2026 14:43:02 GMT" -> seconds since the epoch; -1 if malformed.
int64_t ParseHttpTime(const std::string& s) {
  return static_cast<int64_t>(curl_getdate(s.c_str(), nullptr));
}

std::string Header(const S3Response& r, const char* name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

uint64_t VersionOf(std::string etag) {
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  return XXH3_64bits(etag.data(), etag.size());
}

// Whether s is valid UTF-8 (S3 keys must be).
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    if (c < 0x80) {
      extra = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

// A claim's body: who made it, for people.
std::string ClaimNote(std::string_view owner) { return std::string(owner) + "\n"; }

class S3Store;

// Streams one object: a thread GETs it range by range into a bounded
// buffer that Read empties.
class S3Reader final : public ObjectReader {
 public:
  S3Reader(std::shared_ptr<S3Client> client, std::string key, ObjectInfo info, std::string etag)
      : client_(std::move(client)),
        key_(std::move(key)),
        info_(std::move(info)),
        etag_(std::move(etag)) {
    thread_ = std::thread([this] { Fetch(); });
  }

  ~S3Reader() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Status Read(char* buf, size_t n, size_t* got) override {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !chunks_.empty() || done_; });
    if (chunks_.empty()) {
      *got = 0;
      if (!error_.ok()) return error_;
      if (delivered_ != info_.size) {
        return Status::IOError(client_->Describe(key_) + ": read " + std::to_string(delivered_) +
                               " of " + std::to_string(info_.size) + " bytes");
      }
      return Status::OK();
    }
    size_t copied = 0;
    while (copied < n && !chunks_.empty()) {
      std::string& front = chunks_.front();
      const size_t take = std::min(n - copied, front.size() - front_offset_);
      std::memcpy(buf + copied, front.data() + front_offset_, take);
      copied += take;
      front_offset_ += take;
      if (front_offset_ == front.size()) {
        buffered_ -= front.size();
        chunks_.pop_front();
        front_offset_ = 0;
      }
    }
    delivered_ += copied;
    *got = copied;
    l.unlock();
    cv_.notify_all();
    return Status::OK();
  }

  uint64_t size() const override { return info_.size; }

 private:
  // Takes a piece of the body (on the fetch thread); false to stop.
  bool Push(std::string_view data) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return buffered_ < kReadAhead || stop_; });
    if (stop_) return false;
    chunks_.emplace_back(data);
    buffered_ += data.size();
    l.unlock();
    cv_.notify_all();
    return true;
  }

  void Finish(Status s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      error_ = std::move(s);
      done_ = true;
    }
    cv_.notify_all();
  }

  bool Stopped() {
    std::lock_guard<std::mutex> l(mu_);
    return stop_;
  }

  // The fetch thread: ranged GETs, each resumed where a failure stopped it.
  void Fetch() {
    uint64_t pos = 0;
    int failures = 0;  // in a row, without a byte of progress
    while (pos < info_.size) {
      const uint64_t last = std::min(info_.size, pos + kReadRange) - 1;
      S3Request req;
      req.key = key_;
      req.range = std::to_string(pos) + "-" + std::to_string(last);
      // Every range must come from the version the reader opened.
      req.headers.push_back("If-Match: " + etag_);
      const uint64_t start = pos;
      req.on_body = [&](std::string_view data) {
        if (pos + data.size() > last + 1) return false;  // more than asked for
        if (!Push(data)) return false;
        pos += data.size();
        return true;
      };
      req.cancelled = [this] { return Stopped(); };
      S3Response resp;
      Status s = client_->Attempt(req, &resp);
      if (s.ok() && pos == last + 1) {
        failures = 0;
        continue;
      }
      if (Stopped()) return Finish(Status::FromErrno(ECANCELED, "reader closed"));
      if (s.ok()) {
        s = Status::IOError(client_->Describe(key_) + ": GET of bytes " + req.range + " ended at " +
                            std::to_string(pos));
        resp.retryable = true;
      }
      if (resp.status == 412) {
        return Finish(Status::FromErrno(
            ESTALE,
            client_->Describe(key_) + " was replaced while it was read (" + s.message() + ")"));
      }
      if (pos > start) failures = 0;  // it moved: a new range of failures
      if (!resp.retryable || failures >= client_->options().retries) {
        return Finish(Status::FromErrno(
            s.posix_errno(),
            s.message() + (resp.retryable ? " (gave up after " + std::to_string(failures + 1) +
                                                " attempts without progress)"
                                          : "")));
      }
      ++failures;
      client_->Log(s.message() + "; resuming at byte " + std::to_string(pos) + ", retry " +
                   std::to_string(failures) + " of " + std::to_string(client_->options().retries));
      // The backoff, unless the reader is closed meanwhile.
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, client_->BackoffDelay(failures), [&] { return stop_; })) {
        l.unlock();
        return Finish(Status::FromErrno(ECANCELED, "reader closed"));
      }
    }
    Finish(Status::OK());
  }

  const std::shared_ptr<S3Client> client_;
  const std::string key_;
  const ObjectInfo info_;
  const std::string etag_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;  // guarded by mu_
  size_t front_offset_ = 0;         // read from chunks_.front()
  size_t buffered_ = 0;             // bytes in chunks_
  uint64_t delivered_ = 0;          // bytes given to Read's callers
  bool done_ = false;               // the fetch thread has finished
  bool stop_ = false;               // the reader is being destroyed
  Status error_;
  std::thread thread_;
};

// Writes one object: a single PUT if it fits in one part, else a multipart
// upload, one part in flight while the next fills.
class S3Writer final : public ObjectWriter {
 public:
  S3Writer(std::shared_ptr<S3Client> client, std::string key, uint64_t part_size)
      : client_(std::move(client)), key_(std::move(key)), part_size_(part_size) {}

  ~S3Writer() override {
    if (pending_.valid()) pending_.wait();
    if (!upload_id_.empty() && !committed_) Abort();
  }

  Status Append(std::string_view data) override {
    if (committed_) return Status::InvalidArgument("object already committed");
    if (!failed_.ok()) return failed_;
    size_ += data.size();
    while (!data.empty()) {
      const size_t take = std::min<size_t>(data.size(), part_size_ - part_.size());
      part_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (part_.size() == part_size_) {
        Status s = SendPart();
        if (!s.ok()) return failed_ = s;
      }
    }
    return Status::OK();
  }

  Status Commit() override {
    if (committed_) return Status::InvalidArgument("object already committed");
    if (!failed_.ok()) return failed_;
    Status s = upload_id_.empty() ? PutWhole() : CompleteUpload();
    if (!s.ok()) return failed_ = s;
    committed_ = true;
    return s;
  }

  uint64_t size() const override { return size_; }

 private:
  // The whole object in one PUT (it fits in a part).
  Status PutWhole() {
    S3Request req;
    req.method = "PUT";
    req.key = key_;
    req.body = part_;
    S3Response resp;
    return client_->Perform(req, &resp);
  }

  Status Begin() {
    S3Request req;
    req.method = "POST";
    req.key = key_;
    req.query = {{"uploads", ""}};
    S3Response resp;
    KVFS_RETURN_IF_ERROR(client_->Perform(req, &resp));
    pugi::xml_document doc;
    doc.load_buffer(resp.body.data(), resp.body.size());
    upload_id_ = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
    if (upload_id_.empty()) {
      return Status::IOError(client_->Describe(key_) + ": no UploadId in the server's answer");
    }
    return Status::OK();
  }

  // Waits for the part in flight; its outcome.
  Status WaitPending() {
    if (!pending_.valid()) return Status::OK();
    return pending_.get();
  }

  // Sends part_ as the next part (in the background) and empties it.
  Status SendPart() {
    if (upload_id_.empty()) KVFS_RETURN_IF_ERROR(Begin());
    KVFS_RETURN_IF_ERROR(WaitPending());
    const int number = static_cast<int>(etags_.size()) + 1;
    etags_.emplace_back();
    in_flight_.swap(part_);
    part_.clear();
    pending_ = std::async(std::launch::async, [this, number] {
      S3Request req;
      req.method = "PUT";
      req.key = key_;
      req.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}};
      req.body = in_flight_;
      S3Response resp;
      KVFS_RETURN_IF_ERROR(client_->Perform(req, &resp));
      std::string etag = Header(resp, "etag");
      if (etag.empty()) {
        return Status::IOError(client_->Describe(key_) + ": no ETag for part " +
                               std::to_string(number));
      }
      etags_[number - 1] = std::move(etag);
      return Status::OK();
    });
    return Status::OK();
  }

  Status CompleteUpload() {
    if (!part_.empty()) KVFS_RETURN_IF_ERROR(SendPart());
    KVFS_RETURN_IF_ERROR(WaitPending());
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i) {
      // ETags go back verbatim, quotes included.
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + etags_[i] +
             "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    S3Request req;
    req.method = "POST";
    req.key = key_;
    req.query = {{"uploadId", upload_id_}};
    req.body = xml;
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    if (s.ok()) {
      // A 200 may still carry an error (the server failed after it began
      // answering).
      pugi::xml_document doc;
      doc.load_buffer(resp.body.data(), resp.body.size());
      if (pugi::xml_node e = doc.child("Error"); e) {
        return Status::IOError(client_->Describe(key_) + ": completing the upload: " +
                               e.child_value("Code") + ": " + e.child_value("Message"));
      }
      return s;
    }
    // A retry of a completion that did succeed finds the upload gone: the
    // object is there if it has this upload's size and part count.
    if (resp.attempts > 1 && resp.error_code == "NoSuchUpload" && Completed()) {
      return Status::OK();
    }
    return s;
  }

  // Whether the object is this upload's (see CompleteUpload).
  bool Completed() {
    S3Request req;
    req.method = "HEAD";
    req.key = key_;
    S3Response resp;
    if (!client_->Perform(req, &resp).ok()) return false;
    const std::string etag = Header(resp, "etag");
    return std::strtoull(Header(resp, "content-length").c_str(), nullptr, 10) == size_ &&
           etag.find("-" + std::to_string(etags_.size()) + "\"") != std::string::npos;
  }

  void Abort() {
    S3Request req;
    req.method = "DELETE";
    req.key = key_;
    req.query = {{"uploadId", upload_id_}};
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    if (!s.ok() && resp.error_code != "NoSuchUpload") {
      client_->Log("cannot abort the unfinished upload " + upload_id_ + " of " +
                   client_->Describe(key_) +
                   " (it stays invisible; it is aborted when a store "
                   "is opened after s3_stale_upload_seconds): " +
                   s.message());
    }
  }

  const std::shared_ptr<S3Client> client_;
  const std::string key_;
  const size_t part_size_;
  std::string part_;       // the part being filled
  std::string in_flight_;  // the part being sent (by pending_)
  std::future<Status> pending_;
  std::string upload_id_;           // "" until the first part is sent
  std::vector<std::string> etags_;  // of the parts sent, in order
  uint64_t size_ = 0;
  bool committed_ = false;
  Status failed_;
};

class S3Store final : public PersistentStore {
 public:
  S3Store(std::shared_ptr<S3Client> client, S3StoreOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  Status Init() {
    S3Request req;
    req.method = "HEAD";
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    if (resp.status == 404) {
      return Status::NotFound("bucket " + client_->options().bucket + " does not exist at " +
                              client_->options().endpoint);
    }
    if (resp.status == 403) {
      return Status::FromErrno(
          EACCES, "bucket " + client_->options().bucket + " at " + client_->options().endpoint +
                      " refuses the " + "credentials of " + client_->options().credentials.source +
                      ": " + s.message());
    }
    KVFS_RETURN_IF_ERROR(s);
    if (options_.stale_upload_seconds >= 0) AbortStaleUploads();
    return Status::OK();
  }

  Status List(std::vector<ObjectInfo>* out) override {
    out->clear();
    KVFS_RETURN_IF_ERROR(
        ListKeys(options_.prefix, true, "", [&](const std::string& key, pugi::xml_node c) {
          std::string name = key.substr(options_.prefix.size());
          if (!CheckObjectName(name).ok()) return;
          ObjectInfo info;
          info.name = std::move(name);
          info.size = std::strtoull(c.child_value("Size"), nullptr, 10);
          info.mtime_sec = std::max<int64_t>(0, ParseIsoTime(c.child_value("LastModified")));
          info.version = VersionOf(c.child_value("ETag"));
          out->push_back(std::move(info));
        }));
    std::sort(out->begin(), out->end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return Status::OK();
  }

  Status Stat(const std::string& name, ObjectInfo* out) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    std::string etag;
    return Head(name, out, &etag);
  }

  Status OpenRead(const std::string& name, std::unique_ptr<ObjectReader>* out) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    ObjectInfo info;
    std::string etag;
    KVFS_RETURN_IF_ERROR(Head(name, &info, &etag));
    *out = std::make_unique<S3Reader>(client_, Key(name), std::move(info), std::move(etag));
    return Status::OK();
  }

  Status OpenWrite(const std::string& name, std::unique_ptr<ObjectWriter>* out) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    *out = std::make_unique<S3Writer>(client_, Key(name), options_.part_size);
    return Status::OK();
  }

  Status Delete(const std::string& name) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    return DeleteKey(Key(name));
  }

  Status ClaimRange(uint64_t range, std::string_view owner) override {
    char digits[32];
    std::snprintf(digits, sizeof(digits), "%010llu", static_cast<unsigned long long>(range));
    return CreateClaim(options_.prefix + kRangesDir + digits,
                       "inode range " + std::to_string(range), owner);
  }

  Status HighestClaimedRange(uint64_t* range) override {
    // Claims are zero-padded, so they list in numeric order; only what lies
    // beyond the highest seen before is listed again.
    std::lock_guard<std::mutex> l(claims_mu_);
    const std::string dir = options_.prefix + kRangesDir;
    KVFS_RETURN_IF_ERROR(
        ListKeys(dir, false, highest_claim_key_, [&](const std::string& key, pugi::xml_node) {
          const std::string_view digits = std::string_view(key).substr(dir.size());
          uint64_t r = 0;
          auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), r);
          if (ec != std::errc() || end != digits.data() + digits.size()) return;
          if (r >= highest_claim_) {
            highest_claim_ = r;
            highest_claim_key_ = key;
          }
        }));
    *range = highest_claim_;
    return Status::OK();
  }

  Status ClaimName(const std::string& name, std::string_view owner) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    return CreateClaim(options_.prefix + kNamesDir + name, "name '" + name + "'", owner);
  }

  Status ReleaseName(const std::string& name) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    return DeleteKey(options_.prefix + kNamesDir + name);
  }

  Status IsNameClaimed(const std::string& name, bool* claimed) override {
    KVFS_RETURN_IF_ERROR(CheckName(name));
    S3Request req;
    req.method = "HEAD";
    req.key = options_.prefix + kNamesDir + name;
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    *claimed = s.ok();
    return s.IsNotFound() ? Status::OK() : s;
  }

  std::string Describe() const override {
    std::string prefix = options_.prefix;
    if (!prefix.empty()) prefix.pop_back();
    return "s3://" + client_->options().bucket + (prefix.empty() ? "" : "/" + prefix);
  }

 private:
  std::string Key(const std::string& name) const { return options_.prefix + name; }

  // Lists the keys below `prefix` (ListObjectsV2, 1,000 a page; `delimited`:
  // not the keys below a further '/') that come after `start_after` (""
  // for all), calling each(key, its <Contents> element) in key order.
  Status ListKeys(const std::string& prefix, bool delimited, const std::string& start_after,
                  const std::function<void(const std::string&, pugi::xml_node)>& each) {
    std::string token;
    do {
      S3Request req;
      req.query = {{"list-type", "2"},
                   {"max-keys", kPageKeys},
                   {"prefix", prefix},
                   {"encoding-type", "url"}};
      if (delimited) req.query.emplace_back("delimiter", "/");
      if (!start_after.empty()) req.query.emplace_back("start-after", start_after);
      if (!token.empty()) req.query.emplace_back("continuation-token", token);
      S3Response resp;
      KVFS_RETURN_IF_ERROR(client_->Perform(req, &resp));
      pugi::xml_document doc;
      if (!doc.load_buffer(resp.body.data(), resp.body.size())) {
        return Status::IOError(Describe() + ": listing: the server's answer is not XML");
      }
      pugi::xml_node result = doc.child("ListBucketResult");
      for (pugi::xml_node c : result.children("Contents")) {
        const std::string key = UriDecode(c.child_value("Key"), true);
        if (key.compare(0, prefix.size(), prefix) == 0) each(key, c);
      }
      token = std::string(result.child_value("IsTruncated")) == "true"
                  ? result.child_value("NextContinuationToken")
                  : "";
    } while (!token.empty());
    return Status::OK();
  }

  static Status CheckName(const std::string& name) {
    KVFS_RETURN_IF_ERROR(CheckObjectName(name));
    if (!ValidUtf8(name)) {
      return Status::InvalidArgument("object name is not valid UTF-8 (S3 keys must be)");
    }
    return Status::OK();
  }

  // HEAD of object `name`: its info and ETag; ENOENT if absent.
  Status Head(const std::string& name, ObjectInfo* out, std::string* etag) {
    S3Request req;
    req.method = "HEAD";
    req.key = Key(name);
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    if (s.IsNotFound()) return Status::NotFound("no object " + name + " in " + Describe());
    KVFS_RETURN_IF_ERROR(s);
    *etag = Header(resp, "etag");
    out->name = name;
    out->size = std::strtoull(Header(resp, "content-length").c_str(), nullptr, 10);
    out->mtime_sec = std::max<int64_t>(0, ParseHttpTime(Header(resp, "last-modified")));
    out->mtime_nsec = 0;
    out->version = VersionOf(*etag);
    return Status::OK();
  }

  // Deletes `key`; ENOENT if it is not there (S3's DELETE does not say).
  Status DeleteKey(const std::string& key) {
    S3Request req;
    req.method = "HEAD";
    req.key = key;
    S3Response resp;
    Status s = client_->Perform(req, &resp);
    if (s.IsNotFound()) return Status::NotFound("no object " + key + " in " + Describe());
    KVFS_RETURN_IF_ERROR(s);
    req.method = "DELETE";
    return client_->Perform(req, &resp);
  }

  // Creates claim `key` if nobody has: EEXIST naming `what` if taken.
  Status CreateClaim(const std::string& key, const std::string& what, std::string_view owner) {
    const std::string note = ClaimNote(owner);
    S3Request req;
    req.method = "PUT";
    req.key = key;
    req.body = note;
    S3Response resp;
    if (!unconditional_claims_.load()) {
      req.headers = {"If-None-Match: *"};
      for (int conflicts = 0;; ++conflicts) {
        Status s = client_->Perform(req, &resp);
        if (s.ok()) return s;
        if (resp.status == 412)
          return Status::Exists(what + " is already claimed in " + Describe());
        // AWS: a concurrent conditional write of the same key; one wins.
        if (resp.status == 409 && conflicts < client_->options().retries) {
          client_->Backoff(conflicts + 1);
          continue;
        }
        if (resp.status != 501) return s;
        break;
      }
      if (!unconditional_claims_.exchange(true)) {
        client_->Log(Describe() + ": the server does not implement conditional PUT " +
                     "(If-None-Match: *, " + resp.error_code + "): claims of inode ranges and " +
                     "names are checked, then written, which is safe only while this server is " +
                     "the bucket's only writer (docs/stores.md)");
      }
    }
    S3Request head;
    head.method = "HEAD";
    head.key = key;
    Status s = client_->Perform(head, &resp);
    if (s.ok()) return Status::Exists(what + " is already claimed in " + Describe());
    if (!s.IsNotFound()) return s;
    req.headers.clear();
    return client_->Perform(req, &resp);
  }

  // Aborts unfinished multipart uploads of the store's objects that began
  // stale_upload_seconds or more before the server's time (their writer
  // died: a live one aborts its own). Failures are logged, not fatal.
  void AbortStaleUploads() {
    std::string key_marker, id_marker;
    for (int page = 0; page < 100; ++page) {
      S3Request req;
      req.query = {{"uploads", ""}, {"prefix", options_.prefix}, {"encoding-type", "url"}};
      if (!key_marker.empty()) {
        req.query.emplace_back("key-marker", key_marker);
        req.query.emplace_back("upload-id-marker", id_marker);
      }
      S3Response resp;
      Status s = client_->Perform(req, &resp);
      if (!s.ok()) {
        client_->Log(Describe() + ": cannot list unfinished uploads: " + s.message());
        return;
      }
      const int64_t now = ParseHttpTime(Header(resp, "date"));
      pugi::xml_document doc;
      doc.load_buffer(resp.body.data(), resp.body.size());
      pugi::xml_node result = doc.child("ListMultipartUploadsResult");
      for (pugi::xml_node u : result.children("Upload")) {
        const std::string key = UriDecode(u.child_value("Key"), true);
        const std::string id = u.child_value("UploadId");
        const int64_t began = ParseIsoTime(u.child_value("Initiated"));
        const std::string name = key.substr(std::min(key.size(), options_.prefix.size()));
        if (!CheckObjectName(name).ok() || now < 0 || began < 0 ||
            now - began < options_.stale_upload_seconds) {
          continue;
        }
        S3Request abort;
        abort.method = "DELETE";
        abort.key = key;
        abort.query = {{"uploadId", id}};
        S3Response r;
        Status a = client_->Perform(abort, &r);
        client_->Log(Describe() + ": " + (a.ok() ? "aborted" : "cannot abort") +
                     " the unfinished upload of " + name + " begun " + std::to_string(now - began) +
                     " s ago (its writer stopped)" + (a.ok() ? "" : ": " + a.message()));
      }
      if (std::string(result.child_value("IsTruncated")) != "true") return;
      key_marker = UriDecode(result.child_value("NextKeyMarker"), true);
      id_marker = result.child_value("NextUploadIdMarker");
    }
  }

  const std::shared_ptr<S3Client> client_;
  const S3StoreOptions options_;
  std::atomic<bool> unconditional_claims_{false};  // the server answered 501
  std::mutex claims_mu_;
  uint64_t highest_claim_ = 0;     // guarded by claims_mu_
  std::string highest_claim_key_;  // guarded by claims_mu_
};

}  // namespace

Status OpenS3Store(std::shared_ptr<S3Client> client, const S3StoreOptions& options,
                   std::unique_ptr<PersistentStore>* out) {
  auto store = std::make_unique<S3Store>(std::move(client), options);
  KVFS_RETURN_IF_ERROR(store->Init());
  *out = std::move(store);
  return Status::OK();
}

}  // namespace kvfs::store::s3
