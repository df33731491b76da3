// EtcdCoordination: the claims of coord/coordination.h in etcd, one key each
// under the URL's prefix, created by a create-if-absent transaction
// (docs/coordination.md):
//   /PREFIX/ranges/<range as 16 hex digits>   value: the owner's description
//   /PREFIX/names/<name>                      value: the owner's description
//   /PREFIX/versions/<object>/<version as 16 hex digits>
//                                             value: "range=<16 hex> " + owner
//   /PREFIX/owners/<name>                     value: the owner's description,
//                                             attached to the owner's lease
// Range keys sort by number, so the highest claim is one reverse range read.
// Each claim's value ends with a nonce of its own, so that a claim retried
// on another member after a timeout recognises its own first write instead
// of reporting EEXIST.
#pragma once

#include <memory>
#include <string>

#include "coord/coordination.h"
#include "coord/etcd_client.h"

namespace kvfs::coord {

// Claims under `prefix` (without slashes at either end) through `client`;
// `url` is what Describe() says; tree ownership under a lease of
// `lease_seconds`, granted at the first AcquireTree. Contacts nothing.
std::unique_ptr<Coordination> NewEtcdCoordination(std::unique_ptr<EtcdClient> client,
                                                  const std::string& prefix, const std::string& url,
                                                  int lease_seconds = 10);

// An etcd error as an error of coordination `url`: the message names the
// URL; an etcd that cannot be reached or has no leader (EHOSTUNREACH,
// EAGAIN, ETIMEDOUT) is EIO, which every front end reports cleanly (NFS3ERR_IO,
// NFS4ERR_IO); etcd's other answers keep their errno.
Status CoordinationError(const std::string& url, const Status& s);

// Splits "etcd://HOSTS[/PREFIX]" into client endpoints and prefix (default
// "kvfs"); EINVAL naming what is wrong.
Status ParseEtcdUrl(const std::string& url, std::vector<std::string>* endpoints,
                    std::string* prefix);

}  // namespace kvfs::coord
