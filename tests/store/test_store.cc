#include "tests/store/test_store.h"

#include <sys/stat.h>
#include <unistd.h>
#include <pugixml.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kvfs::store_test {

std::vector<StoreKind> AllStoreKinds() {
  return {StoreKind::kPosix, StoreKind::kRadosgw, StoreKind::kSwift};
}

std::vector<StoreKind> PluginStoreKinds() { return {StoreKind::kPosix, StoreKind::kRadosgw}; }

std::string KindName(StoreKind kind) {
  switch (kind) {
    case StoreKind::kPosix:
      return "posix";
    case StoreKind::kRadosgw:
      return "radosgw";
    case StoreKind::kSwift:
      return "swift";
  }
  return "?";
}

Status TestStore::Create(StoreKind kind, std::unique_ptr<TestStore>* out) {
  std::unique_ptr<TestStore> t(new TestStore(kind));
  if (kind == StoreKind::kPosix) {
    t->url_ = t->dir_.path() + "/store";
    if (::mkdir(t->url_.c_str(), 0755) != 0) return Status::FromErrno(errno, "mkdir " + t->url_);
    *out = std::move(t);
    return Status::OK();
  }
  s3_test::UseTestCredentials();
  KVFS_RETURN_IF_ERROR(s3_test::FindS3Server(KindName(kind), &t->server_));
  KVFS_RETURN_IF_ERROR(s3_test::ProxyTo(t->server_, &t->proxy_));
  static std::atomic<int> counter{0};
  const std::string bucket =
      "kvfs-" + KindName(kind) + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  t->client_ =
      std::make_unique<store::s3::S3Client>(s3_test::ClientOptions(t->server_, *t->proxy_, bucket));
  KVFS_RETURN_IF_ERROR(s3_test::CreateBucket(t->client_.get()));
  // radosgw's stores live under a key prefix, Swift's at the bucket's root:
  // both ways are used.
  if (kind == StoreKind::kRadosgw) t->prefix_ = "trees/";
  t->url_ = "s3://" + bucket + (t->prefix_.empty() ? "" : "/trees");
  t->options_ = {{"s3_endpoint", t->proxy_->endpoint()},
                 {"s3_region", t->server_.region},
                 {"s3_profile", t->server_.profile},
                 {"s3_retries", "4"}};
  *out = std::move(t);
  return Status::OK();
}

TestStore::~TestStore() {
  if (client_ != nullptr && proxy_ != nullptr) {
    proxy_->ClearRules();
    (void)proxy_->SetRefusing(false);
    s3_test::DeleteBucket(client_.get());
  }
}

store::StoreSpec TestStore::Spec() const {
  store::StoreSpec spec = store::StoreAt(url_);
  spec.options = options_;
  return spec;
}

Status TestStore::Open(std::unique_ptr<store::PersistentStore>* out,
                       const store::StoreOptions& extra) const {
  store::StoreSpec spec = Spec();
  for (const auto& [k, v] : extra) spec.options[k] = v;
  return store::OpenStore(spec, out);
}

std::string TestStore::FsalConfig() const {
  std::string text = "persistent_store = \"" + url_ + "\";\n";
  for (const auto& [k, v] : options_) text += k + " = \"" + v + "\";\n";
  return text;
}

std::string TestStore::CommandOptions(const char* store_option) const {
  std::string text = std::string(store_option) + " " + url_;
  for (const auto& [k, v] : options_) {
    std::string flag = k;
    for (char& c : flag) c = c == '_' ? '-' : c;
    text += " --" + flag + " " + v;
  }
  return text;
}

Status TestStore::Put(const std::string& name, std::string_view data) {
  if (!is_s3()) {
    const std::string path = url_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    return f ? Status::OK() : Status::IOError("cannot write " + path);
  }
  store::s3::S3Request req;
  req.method = "PUT";
  req.key = Key(name);
  req.body = data;
  store::s3::S3Response resp;
  return client_->Perform(req, &resp);
}

Status TestStore::PutFile(const std::string& name, const std::string& local_path) {
  std::ifstream in(local_path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + local_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Put(name, ss.str());
}

Status TestStore::Get(const std::string& name, std::string* data) {
  if (!is_s3()) {
    std::ifstream in(url_ + "/" + name, std::ios::binary);
    if (!in) return Status::NotFound("no " + url_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    *data = ss.str();
    return Status::OK();
  }
  store::s3::S3Request req;
  req.key = Key(name);
  store::s3::S3Response resp;
  KVFS_RETURN_IF_ERROR(client_->Perform(req, &resp));
  *data = std::move(resp.body);
  return Status::OK();
}

bool TestStore::Exists(const std::string& name) {
  if (!is_s3()) {
    struct stat st;
    return ::stat((url_ + "/" + name).c_str(), &st) == 0;
  }
  store::s3::S3Request req;
  req.method = "HEAD";
  req.key = Key(name);
  store::s3::S3Response resp;
  return client_->Perform(req, &resp).ok();
}

Status TestStore::Remove(const std::string& name) {
  if (!is_s3()) {
    const std::string path = url_ + "/" + name;
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "unlink " + path);
    return Status::OK();
  }
  store::s3::S3Request req;
  req.method = "DELETE";
  req.key = Key(name);
  store::s3::S3Response resp;
  return client_->Perform(req, &resp);
}

int TestStore::UnfinishedUploads() {
  if (!is_s3()) return 0;
  store::s3::S3Request req;
  req.query = {{"uploads", ""}};
  store::s3::S3Response resp;
  if (!client_->Perform(req, &resp).ok()) return -1;
  pugi::xml_document doc;
  doc.load_buffer(resp.body.data(), resp.body.size());
  int n = 0;
  for (pugi::xml_node u : doc.child("ListMultipartUploadsResult").children("Upload")) {
    (void)u;
    ++n;
  }
  return n;
}

}  // namespace kvfs::store_test
