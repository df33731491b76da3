#include "tests/s3/s3_test_server.h"

#include <pugixml.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <vector>

namespace kvfs::s3_test {

Status FindS3Server(const std::string& kind, S3ServerInfo* out) {
  const char* dir = std::getenv("KVFS_S3_SERVERS");
  if (dir == nullptr || dir[0] == '\0') {
    return Status::NotFound(
        "KVFS_S3_SERVERS is not set: run the S3 tests through ctest (its fixtures start the "
        "servers), or start one with tests/s3/s3-fixture.sh start " +
        kind + " DIR/" + kind + " and set KVFS_S3_SERVERS=DIR");
  }
  const std::string file = std::string(dir) + "/" + kind + "/server.env";
  std::ifstream in(file);
  if (!in) {
    return Status::NotFound("no " + file + ": the " + kind +
                            " fixture is not running (ctest -R s3_" + kind + "_start)");
  }
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  S3ServerInfo s;
  s.kind = kind;
  const std::string endpoint = env["endpoint"];  // http://HOST:PORT
  const size_t host = endpoint.find("://") + 3, colon = endpoint.rfind(':');
  s.host = endpoint.substr(host, colon - host);
  s.port = std::atoi(endpoint.c_str() + colon + 1);
  s.region = env["region"];
  s.netns = env["netns"];
  s.server_dir = env["server_dir"];
  s.profile = "kvfs-test-" + kind;
  s.credentials.access_key = env["access_key"];
  s.credentials.secret_key = env["secret_key"];
  s.credentials.source = file;
  if (s.port == 0 || s.netns.empty()) return Status::IOError(file + " is incomplete");
  *out = std::move(s);
  return Status::OK();
}

void UseTestCredentials() { setenv("AWS_SHARED_CREDENTIALS_FILE", KVFS_S3_TEST_CREDENTIALS, 0); }

Status ProxyTo(const S3ServerInfo& server, std::unique_ptr<FaultProxy>* out) {
  return FaultProxy::Start(server.host, server.port, server.netns, out);
}

store::s3::S3ClientOptions ClientOptions(const S3ServerInfo& server, const FaultProxy& proxy,
                                         const std::string& bucket) {
  store::s3::S3ClientOptions o;
  o.endpoint = proxy.endpoint();
  o.region = server.region;
  o.bucket = bucket;
  o.credentials = server.credentials;
  o.retries = 3;
  o.backoff_ms = 20;
  o.max_backoff_ms = 200;
  return o;
}

Status CreateBucket(store::s3::S3Client* client) {
  store::s3::S3Request req;
  req.method = "PUT";
  store::s3::S3Response resp;
  return client->Perform(req, &resp);
}

void DeleteBucket(store::s3::S3Client* client) {
  using store::s3::S3Request;
  using store::s3::S3Response;
  for (int round = 0; round < 1000; ++round) {
    S3Request list;
    list.query = {{"list-type", "2"}, {"max-keys", "1000"}, {"encoding-type", "url"}};
    S3Response resp;
    if (!client->Perform(list, &resp).ok()) return;
    pugi::xml_document doc;
    doc.load_buffer(resp.body.data(), resp.body.size());
    std::vector<std::string> keys;
    for (pugi::xml_node c : doc.child("ListBucketResult").children("Contents")) {
      keys.push_back(store::s3::UriDecode(c.child_value("Key"), true));
    }
    if (keys.empty()) break;
    for (const std::string& key : keys) {
      S3Request del;
      del.method = "DELETE";
      del.key = key;
      (void)client->Perform(del, &resp);
    }
  }
  S3Request uploads;
  uploads.query = {{"uploads", ""}};
  S3Response resp;
  if (client->Perform(uploads, &resp).ok()) {
    pugi::xml_document doc;
    doc.load_buffer(resp.body.data(), resp.body.size());
    for (pugi::xml_node u : doc.child("ListMultipartUploadsResult").children("Upload")) {
      S3Request abort;
      abort.method = "DELETE";
      abort.key = u.child_value("Key");
      abort.query = {{"uploadId", u.child_value("UploadId")}};
      (void)client->Perform(abort, &resp);
    }
  }
  S3Request bucket;
  bucket.method = "DELETE";
  (void)client->Perform(bucket, &resp);
}

}  // namespace kvfs::s3_test
