// S3 credentials, found the way every S3 tool finds them.
#pragma once

#include <string>

#include "common/status.h"

namespace kvfs::store::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // "" if none
  // Where they came from, for messages: "AWS_ACCESS_KEY_ID" or
  // "profile 'default' of /root/.aws/credentials". Never the keys.
  std::string source;
};

// Finds the credentials to sign requests with:
//   1. with `profile` non-empty (the s3_profile setting): that profile of
//      the shared credentials file, and nothing else;
//   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//      AWS_SESSION_TOKEN (optional);
//   3. profile $AWS_PROFILE (or "default") of the shared credentials file.
// The shared credentials file is $AWS_SHARED_CREDENTIALS_FILE, else
// ~/.aws/credentials (an INI file: [profile] sections with
// aws_access_key_id, aws_secret_access_key, aws_session_token). EACCES with
// what was tried if none is found; messages never contain a key.
Status FindCredentials(const std::string& profile, Credentials* out);

}  // namespace kvfs::store::s3
