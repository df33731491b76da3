#include "store/s3/credentials.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>

namespace kvfs::store::s3 {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

std::string SharedCredentialsFile() {
  if (std::string f = Env("AWS_SHARED_CREDENTIALS_FILE"); !f.empty()) return f;
  std::string home = Env("HOME");
  if (home.empty()) {
    // A daemon (ganesha.nfsd under systemd) may have no HOME.
    if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) {
      home = pw->pw_dir;
    }
  }
  return home + "/.aws/credentials";
}

// Reads section `profile` of INI file `file` into *values. ENOENT if the
// file or the section does not exist.
Status ReadProfile(const std::string& file, const std::string& profile,
                   std::map<std::string, std::string>* values) {
  std::ifstream in(file);
  if (!in) return Status::FromErrno(errno != 0 ? errno : ENOENT, "cannot read " + file);
  bool found = false, inside = false;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      inside = Trim(line.substr(1, line.size() - 2)) == profile;
      found = found || inside;
      continue;
    }
    const size_t eq = line.find('=');
    if (!inside || eq == std::string::npos) continue;
    (*values)[Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
  if (!found) return Status::NotFound("no profile '" + profile + "' in " + file);
  return Status::OK();
}

Status FromProfile(const std::string& profile, Credentials* out) {
  const std::string file = SharedCredentialsFile();
  std::map<std::string, std::string> values;
  KVFS_RETURN_IF_ERROR(ReadProfile(file, profile, &values));
  Credentials c;
  c.access_key = values["aws_access_key_id"];
  c.secret_key = values["aws_secret_access_key"];
  c.session_token = values["aws_session_token"];
  c.source = "profile '" + profile + "' of " + file;
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Status::FromErrno(EACCES,
                             c.source + " lacks aws_access_key_id or aws_secret_access_key");
  }
  *out = std::move(c);
  return Status::OK();
}

}  // namespace

Status FindCredentials(const std::string& profile, Credentials* out) {
  if (!profile.empty()) {
    Status s = FromProfile(profile, out);
    if (!s.ok()) return Status::FromErrno(EACCES, "S3 credentials (s3_profile): " + s.message());
    return s;
  }
  if (!Env("AWS_ACCESS_KEY_ID").empty() || !Env("AWS_SECRET_ACCESS_KEY").empty()) {
    Credentials c;
    c.access_key = Env("AWS_ACCESS_KEY_ID");
    c.secret_key = Env("AWS_SECRET_ACCESS_KEY");
    c.session_token = Env("AWS_SESSION_TOKEN");
    c.source = "AWS_ACCESS_KEY_ID";
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Status::FromErrno(EACCES,
                               "S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must "
                               "both be set");
    }
    *out = std::move(c);
    return Status::OK();
  }
  std::string profile_name = Env("AWS_PROFILE");
  if (profile_name.empty()) profile_name = "default";
  Status s = FromProfile(profile_name, out);
  if (!s.ok()) {
    return Status::FromErrno(EACCES,
                             "no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not "
                             "set and " +
                                 s.message() + " (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE)");
  }
  return s;
}

}  // namespace kvfs::store::s3
