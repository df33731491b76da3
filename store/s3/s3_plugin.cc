// The "s3" persistent store plugin (libkvfs-store-s3.so): s3://BUCKET[/PREFIX]
// with the s3_* settings (docs/stores.md).
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/plugin/plugin_options.h"
#include "store/s3/credentials.h"
#include "store/s3/s3_client.h"
#include "store/s3/s3_store.h"
#include "store/store_plugin.h"

namespace kvfs::store::s3 {
namespace {

// Bucket names: 3-63 lower-case letters, digits, '.' and '-', beginning and
// ending with a letter or digit.
bool ValidBucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : b) {
    if (!alnum(c) && c != '.' && c != '-') return false;
  }
  return alnum(b.front()) && alnum(b.back());
}

Status Invalid(const std::string& url, const std::string& why) {
  return Status::InvalidArgument("persistent store " + url + ": " + why);
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : fallback;
}

Status OpenS3(const StoreLocation& location, const StoreSpec& spec,
              std::unique_ptr<PersistentStore>* out) {
  const std::string url = "s3://" + location.resource;
  S3ClientOptions c;
  S3StoreOptions s;
  const size_t slash = location.resource.find('/');
  c.bucket = location.resource.substr(0, slash);
  if (!ValidBucket(c.bucket)) {
    return Invalid(
        url, "bucket name '" + c.bucket + "' is not 3-63 lower-case letters, digits, '.' and '-'");
  }
  std::string prefix = slash == std::string::npos ? "" : location.resource.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) {
    if (prefix.front() == '/' || prefix.find("//") != std::string::npos) {
      return Invalid(url, "the key prefix has an empty component");
    }
    s.prefix = prefix + "/";
  }

  std::string endpoint, addressing, profile;
  bool tls = true;
  uint64_t part_size = s.part_size;
  int64_t retries = c.retries, timeout = c.timeout_seconds, stale = s.stale_upload_seconds;
  c.region = EnvOr("AWS_REGION", EnvOr("AWS_DEFAULT_REGION", "us-east-1").c_str());
  PluginOptionReader r("persistent store s3", spec.options);
  r.String("s3_endpoint", &endpoint);
  r.String("s3_region", &c.region);
  r.String("s3_addressing", &addressing);
  const bool tls_given = spec.options.count("s3_tls") != 0;
  r.Bool("s3_tls", &tls);
  r.String("s3_ca_file", &c.ca_file);
  r.String("s3_profile", &profile);
  r.Size("s3_part_size", &part_size);
  r.Int("s3_retries", 0, 1000, &retries);
  r.Int("s3_timeout_seconds", 1, 86400, &timeout);
  r.Int("s3_stale_upload_seconds", -1, 10LL * 365 * 86400, &stale);
  KVFS_RETURN_IF_ERROR(r.Finish());

  if (part_size < (5u << 20) || part_size > (5ull << 30)) {
    return Invalid(url, "s3_part_size must be 5M to 5G (S3's limits of a part)");
  }
  if (c.region.empty()) return Invalid(url, "s3_region is empty");
  // The endpoint: scheme://host[:port], host[:port] (scheme from s3_tls), or
  // AWS's for the region.
  if (endpoint.empty()) {
    endpoint = std::string(tls ? "https" : "http") + "://s3." + c.region + ".amazonaws.com";
    if (addressing.empty()) addressing = "virtual";
  } else if (size_t sep = endpoint.find("://"); sep != std::string::npos) {
    const std::string scheme = endpoint.substr(0, sep);
    if (scheme != "http" && scheme != "https") {
      return Invalid(url, "s3_endpoint '" + endpoint + "' must be http:// or https://");
    }
    if (tls_given && tls != (scheme == "https")) {
      return Invalid(url, "s3_tls contradicts s3_endpoint '" + endpoint + "'");
    }
  } else {
    endpoint = std::string(tls ? "https" : "http") + "://" + endpoint;
  }
  while (endpoint.back() == '/') endpoint.pop_back();
  const size_t host = endpoint.find("://") + 3;
  if (host >= endpoint.size() || endpoint.find('/', host) != std::string::npos ||
      endpoint.find_first_of("?#@ ", host) != std::string::npos) {
    return Invalid(url, "s3_endpoint '" + endpoint + "' is not scheme://host[:port]");
  }
  c.endpoint = endpoint;
  if (addressing.empty()) addressing = "path";
  if (addressing != "path" && addressing != "virtual") {
    return Invalid(url, "s3_addressing '" + addressing + "' is neither path nor virtual");
  }
  c.virtual_host = addressing == "virtual";
  if (!c.ca_file.empty() && access(c.ca_file.c_str(), R_OK) != 0) {
    return Status::FromErrno(errno, "persistent store " + url + ": s3_ca_file " + c.ca_file);
  }
  c.retries = static_cast<int>(retries);
  c.timeout_seconds = static_cast<int>(timeout);
  c.log = spec.log;
  s.part_size = part_size;
  s.stale_upload_seconds = stale;
  Status found = FindCredentials(profile, &c.credentials);
  if (!found.ok()) return Status::FromErrno(found.posix_errno(), url + ": " + found.message());
  return OpenS3Store(std::make_shared<S3Client>(std::move(c)), s, out);
}

}  // namespace
}  // namespace kvfs::store::s3

KVFS_DEFINE_STORE_PLUGIN("s3", ::kvfs::store::s3::OpenS3)
