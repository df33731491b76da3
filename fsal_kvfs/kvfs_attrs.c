/* Conversions between the bridge's plain structs and Ganesha's types. */
#include "config.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fsal_convert.h"
#include "kvfs_int.h"

fsal_status_t kvfs_status(int err) {
  if (err == 0) return fsalstat(ERR_FSAL_NO_ERROR, 0);
  return fsalstat(posix2fsal_error(err), err);
}

object_file_type_t kvfs_to_fsal_type(uint32_t type) {
  switch (type) {
    case KVFS_TYPE_REGULAR:
      return REGULAR_FILE;
    case KVFS_TYPE_DIRECTORY:
      return DIRECTORY;
    case KVFS_TYPE_SYMLINK:
      return SYMBOLIC_LINK;
    case KVFS_TYPE_CHAR_DEVICE:
      return CHARACTER_FILE;
    case KVFS_TYPE_BLOCK_DEVICE:
      return BLOCK_FILE;
    case KVFS_TYPE_FIFO:
      return FIFO_FILE;
    case KVFS_TYPE_SOCKET:
      return SOCKET_FILE;
    default:
      return NO_FILE_TYPE;
  }
}

static struct timespec to_timespec(struct kvfs_timespec t) {
  struct timespec ts = {.tv_sec = (time_t)t.sec, .tv_nsec = t.nsec};

  return ts;
}

static struct kvfs_timespec from_timespec(struct timespec t) {
  struct kvfs_timespec ts = {.sec = t.tv_sec, .nsec = (uint32_t)t.tv_nsec};

  return ts;
}

void kvfs_to_fsal_attrs(const struct kvfs_export* exp, const struct kvfs_attr* in,
                        struct fsal_attrlist* attrs) {
  /* Everything is cheap to fill, so fill everything; the caller's
   * request_mask only limits what it looks at. ACLs are not supported
   * (and must not be reported as valid). */
  attrs->type = kvfs_to_fsal_type(in->type);
  attrs->filesize = in->size;
  attrs->fsid.major = exp->identity;
  attrs->fsid.minor = exp->root_ino;
  attrs->fileid = in->ino;
  attrs->mode = in->mode & 07777;
  attrs->numlinks = in->nlink;
  attrs->owner = in->uid;
  attrs->group = in->gid;
  attrs->rawdev.major = major((dev_t)in->rdev);
  attrs->rawdev.minor = minor((dev_t)in->rdev);
  attrs->atime = to_timespec(in->atime);
  attrs->mtime = to_timespec(in->mtime);
  attrs->ctime = to_timespec(in->ctime);
  attrs->spaceused = in->space_used;
  attrs->change = in->change;
  attrs->supported = ATTRS_POSIX;
  attrs->valid_mask = ATTRS_POSIX;
}

void kvfs_from_fsal_attrs(const struct fsal_attrlist* attrs, uint32_t umask,
                          struct kvfs_setattr* req) {
  memset(req, 0, sizeof(*req));

  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_MODE)) {
    req->mask |= KVFS_SET_MODE;
    req->mode = fsal2unix_mode(attrs->mode) & 07777 & ~umask;
  }
  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_OWNER)) {
    req->mask |= KVFS_SET_UID;
    req->uid = (uint32_t)attrs->owner;
  }
  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_GROUP)) {
    req->mask |= KVFS_SET_GID;
    req->gid = (uint32_t)attrs->group;
  }
  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_SIZE)) {
    req->mask |= KVFS_SET_SIZE;
    req->size = attrs->filesize;
  }
  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_ATIME_SERVER)) {
    req->mask |= KVFS_SET_ATIME_NOW;
  } else if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_ATIME)) {
    req->mask |= KVFS_SET_ATIME;
    req->atime = from_timespec(attrs->atime);
  }
  if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_MTIME_SERVER)) {
    req->mask |= KVFS_SET_MTIME_NOW;
  } else if (FSAL_TEST_MASK(attrs->valid_mask, ATTR_MTIME)) {
    req->mask |= KVFS_SET_MTIME;
    req->mtime = from_timespec(attrs->mtime);
  }
}
