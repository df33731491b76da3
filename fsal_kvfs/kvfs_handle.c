/* FSAL_KVFS object handles and their operations.
 *
 * Each operation translates Ganesha's arguments, calls the bridge and
 * translates the result back. Error mapping rule: the core reports a missing
 * inode as ESTALE (some paths as ENOENT); about the object a handle names,
 * both mean the object is gone: ESTALE. ENOENT about a name in a directory
 * stays ENOENT unless the directory itself is gone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fsal_convert.h"
#include "kvfs_int.h"

/* How many MDCACHE chunks one readdir call fills: the requested one plus one
 * chunk of readahead (the cost of a core ReadDir is one seek). */
#define KVFS_READDIR_CHUNKS 2

static inline struct kvfs_handle* kvfs_hdl(const struct fsal_obj_handle* obj) {
  return container_of(obj, struct kvfs_handle, obj_handle);
}

static inline uint32_t kvfs_umask(const struct kvfs_export* exp) {
  struct fsal_export* e = (struct fsal_export*)&exp->export;

  return e->exp_ops.fs_umask(e);
}

/* Logs unexpected (non-POSIX-semantic) errors with the core's message. */
static void kvfs_log_error(const char* op, uint64_t ino, int err) {
  if (err == EIO || err == ENOMEM || err == ENOSPC)
    LogMajor(COMPONENT_FSAL, "KVFS %s on inode %" PRIu64 ": %s", op, ino, kvfs_last_error());
  else
    LogFullDebug(COMPONENT_FSAL, "KVFS %s on inode %" PRIu64 ": %s", op, ino, kvfs_last_error());
}

/* Whether a getattr result says the inode does not exist. */
static inline bool kvfs_is_gone(int err) { return err == ENOENT || err == ESTALE; }

/* Status of a failed operation on the object `ino` itself. */
static fsal_status_t kvfs_obj_error(const char* op, uint64_t ino, int err) {
  kvfs_log_error(op, ino, err);
  if (err == ENOENT) err = ESTALE;
  return kvfs_status(err);
}

/* Status of a failed operation on a name in directory `dir`. */
static fsal_status_t kvfs_dir_error(const char* op, kvfs_fs* fs, uint64_t dir, int err) {
  struct kvfs_attr attr;

  kvfs_log_error(op, dir, err);
  if (err == ENOENT && kvfs_is_gone(kvfs_core_getattr(fs, dir, &attr))) err = ESTALE;
  return kvfs_status(err);
}

/* Allocates the handle of an object whose attributes are known. */
static struct kvfs_handle* kvfs_alloc_handle(struct kvfs_export* exp,
                                             const struct kvfs_attr* attr) {
  struct kvfs_handle* hdl = gsh_calloc(1, sizeof(struct kvfs_handle));

  hdl->export = exp;
  hdl->ino = attr->ino;
  kvfs_handle_encode(exp->identity, attr->ino, hdl->wire);
  fsal_obj_handle_init(&hdl->obj_handle, &exp->export, kvfs_to_fsal_type(attr->type));
  hdl->obj_handle.obj_ops = &KVFS.handle_ops;
  hdl->obj_handle.fileid = attr->ino;
  hdl->obj_handle.fsid.major = exp->identity;
  hdl->obj_handle.fsid.minor = exp->root_ino;
  hdl->global_fd.fsal_fd.openflags = FSAL_O_CLOSED;
  return hdl;
}

/* Fills attrs_out (if any) from attr. */
static void kvfs_fill_attrs(const struct kvfs_export* exp, const struct kvfs_attr* attr,
                            struct fsal_attrlist* attrs_out) {
  if (attrs_out != NULL) kvfs_to_fsal_attrs(exp, attr, attrs_out);
}

/* Ownership and mode of a new object from the caller's attributes. */
static struct kvfs_new_object kvfs_new_object(const struct kvfs_export* exp,
                                              const struct fsal_attrlist* in,
                                              uint32_t default_mode) {
  struct kvfs_new_object obj = {
      .mode = default_mode,
      .uid = op_ctx->creds.caller_uid,
      .gid = op_ctx->creds.caller_gid,
  };

  if (in != NULL) {
    if (FSAL_TEST_MASK(in->valid_mask, ATTR_MODE)) obj.mode = fsal2unix_mode(in->mode) & 07777;
    if (FSAL_TEST_MASK(in->valid_mask, ATTR_OWNER)) obj.uid = (uint32_t)in->owner;
    if (FSAL_TEST_MASK(in->valid_mask, ATTR_GROUP)) obj.gid = (uint32_t)in->group;
  }
  obj.mode &= ~kvfs_umask(exp);
  return obj;
}

/* After creating an object, sets the requested attributes that creation
 * itself does not take (times, size). Updates *attr. */
static int kvfs_set_remaining(struct kvfs_export* exp, struct kvfs_attr* attr,
                              const struct fsal_attrlist* in) {
  struct kvfs_setattr req;

  if (in == NULL) return 0;
  kvfs_from_fsal_attrs(in, kvfs_umask(exp), &req);
  req.mask &= ~(KVFS_SET_MODE | KVFS_SET_UID | KVFS_SET_GID);
  if (attr->type != KVFS_TYPE_REGULAR) req.mask &= ~KVFS_SET_SIZE;
  if (req.mask == 0) return 0;
  return kvfs_core_setattr(exp->fs, attr->ino, &req, attr);
}

/* --- Lifecycle ------------------------------------------------------- */

static void kvfs_release(struct fsal_obj_handle* obj_hdl) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);

  fsal_obj_handle_fini(obj_hdl);
  gsh_free(hdl);
}

static fsal_status_t kvfs_merge(struct fsal_obj_handle* orig_hdl,
                                struct fsal_obj_handle* dupe_hdl) {
  struct kvfs_handle* orig = kvfs_hdl(orig_hdl);
  struct kvfs_handle* dupe = kvfs_hdl(dupe_hdl);
  fsal_status_t status = {ERR_FSAL_NO_ERROR, 0};

  if (orig_hdl == dupe_hdl || orig_hdl->type != REGULAR_FILE || dupe_hdl->type != REGULAR_FILE)
    return status;

  /* Share reservations taken on the duplicate move to the original. */
  status = merge_share(orig_hdl, &orig->share, &dupe->share);
  if (FSAL_IS_ERROR(status)) return status;

  /* So does an open global fd (a stateless create opened it, and
   * Ganesha counted it in open_fd_count). */
  PTHREAD_RWLOCK_wrlock(&orig_hdl->obj_lock);
  if (orig->global_fd.fsal_fd.openflags == FSAL_O_CLOSED) {
    orig->global_fd.fsal_fd.openflags = dupe->global_fd.fsal_fd.openflags;
    dupe->global_fd.fsal_fd.openflags = FSAL_O_CLOSED;
  }
  PTHREAD_RWLOCK_unlock(&orig_hdl->obj_lock);
  return status;
}

/* --- Names and directories ----------------------------------------- */

static fsal_status_t kvfs_lookup(struct fsal_obj_handle* dir_hdl, const char* name,
                                 struct fsal_obj_handle** handle, struct fsal_attrlist* attrs_out) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  struct kvfs_export* exp = dir->export;
  struct kvfs_attr attr;
  int err;

  /* Never climb above the exported subtree. */
  if (dir->ino == exp->root_ino && strcmp(name, "..") == 0) name = ".";

  err = kvfs_core_lookup(exp->fs, dir->ino, name, &attr);
  if (err != 0) return kvfs_dir_error("lookup", exp->fs, dir->ino, err);

  *handle = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

/* State of one readdir call, passed through the bridge's callback. */
struct kvfs_readdir_state {
  struct kvfs_export* exp;
  fsal_readdir_cb cb;
  void* dir_state;
  attrmask_t attrmask;
  int chunks;   /* MDCACHE chunks filled so far */
  bool stopped; /* stopped before the end of the directory */
};

static bool kvfs_readdir_entry(void* arg, const char* name, const struct kvfs_attr* attr,
                               uint64_t cookie) {
  struct kvfs_readdir_state* st = arg;
  struct kvfs_handle* hdl = kvfs_alloc_handle(st->exp, attr);
  struct fsal_attrlist attrs;
  enum fsal_dir_result rc;

  fsal_prepare_attrs(&attrs, st->attrmask);
  kvfs_to_fsal_attrs(st->exp, attr, &attrs);
  /* The cookie resumes after this entry (the core's definition, and
   * what MDCACHE stores as the dirent's cookie). */
  rc = st->cb(name, &hdl->obj_handle, &attrs, st->dir_state, cookie);
  fsal_release_attrs(&attrs);

  if (rc >= DIR_TERMINATE) {
    st->stopped = true;
    return false;
  }
  if (rc == DIR_READAHEAD && ++st->chunks >= KVFS_READDIR_CHUNKS) {
    st->stopped = true;
    return false;
  }
  return true;
}

static fsal_status_t kvfs_readdir(struct fsal_obj_handle* dir_hdl, fsal_cookie_t* whence,
                                  void* dir_state, fsal_readdir_cb cb, attrmask_t attrmask,
                                  bool* eof) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  struct kvfs_readdir_state st = {
      .exp = dir->export,
      .cb = cb,
      .dir_state = dir_state,
      .attrmask = attrmask,
  };
  uint64_t cookie = whence != NULL ? *whence : 0;
  bool core_eof = false;
  int err;

  /* Cookies 1 and 2 are NFS's "." and ".."; resume from the start. */
  if (cookie < FIRST_COOKIE) cookie = 0;

  err = kvfs_core_readdir(dir->export->fs, dir->ino, cookie, kvfs_readdir_entry, &st, &core_eof);
  if (err != 0) return kvfs_obj_error("readdir", dir->ino, err);
  *eof = core_eof && !st.stopped;
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_cookie_t kvfs_compute_readdir_cookie(struct fsal_obj_handle* parent, const char* name) {
  struct kvfs_handle* dir = kvfs_hdl(parent);
  uint64_t cookie = 0;

  /* 0 tells MDCACHE the cookie is unknown (it then stops trusting its
   * chunks of this directory, which is safe). */
  if (kvfs_core_cookie_of(dir->export->fs, dir->ino, name, &cookie) != 0) return 0;
  return cookie;
}

/* Entries are listed in cookie order. */
static int kvfs_dirent_cmp(struct fsal_obj_handle* parent, const char* name1, fsal_cookie_t cookie1,
                           const char* name2, fsal_cookie_t cookie2) {
  (void)parent;
  if (cookie1 < cookie2) return -1;
  if (cookie1 > cookie2) return 1;
  return strcmp(name1, name2);
}

static fsal_status_t kvfs_mkdir(struct fsal_obj_handle* dir_hdl, const char* name,
                                struct fsal_attrlist* attrs_in, struct fsal_obj_handle** new_obj,
                                struct fsal_attrlist* attrs_out) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  struct kvfs_export* exp = dir->export;
  struct kvfs_new_object obj = kvfs_new_object(exp, attrs_in, 0755);
  struct kvfs_attr attr;
  int err;

  err = kvfs_core_mkdir(exp->fs, dir->ino, name, &obj, &attr);
  if (err != 0) return kvfs_dir_error("mkdir", exp->fs, dir->ino, err);
  err = kvfs_set_remaining(exp, &attr, attrs_in);
  if (err != 0)
    LogWarn(COMPONENT_FSAL, "KVFS mkdir %s: attributes not set: %s", name, kvfs_last_error());

  *new_obj = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_mknode(struct fsal_obj_handle* dir_hdl, const char* name,
                                 object_file_type_t nodetype, struct fsal_attrlist* attrs_in,
                                 struct fsal_obj_handle** new_obj,
                                 struct fsal_attrlist* attrs_out) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  struct kvfs_export* exp = dir->export;
  struct kvfs_new_object obj = kvfs_new_object(exp, attrs_in, 0644);
  struct kvfs_attr attr;
  uint32_t type;
  uint64_t rdev = 0;
  int err;

  switch (nodetype) {
    case CHARACTER_FILE:
      type = KVFS_TYPE_CHAR_DEVICE;
      break;
    case BLOCK_FILE:
      type = KVFS_TYPE_BLOCK_DEVICE;
      break;
    case FIFO_FILE:
      type = KVFS_TYPE_FIFO;
      break;
    case SOCKET_FILE:
      type = KVFS_TYPE_SOCKET;
      break;
    default:
      return fsalstat(ERR_FSAL_BADTYPE, 0);
  }
  if (attrs_in != NULL && (type == KVFS_TYPE_CHAR_DEVICE || type == KVFS_TYPE_BLOCK_DEVICE))
    rdev = makedev(attrs_in->rawdev.major, attrs_in->rawdev.minor);

  err = kvfs_core_mknod(exp->fs, dir->ino, name, type, &obj, rdev, &attr);
  if (err != 0) return kvfs_dir_error("mknod", exp->fs, dir->ino, err);
  err = kvfs_set_remaining(exp, &attr, attrs_in);
  if (err != 0)
    LogWarn(COMPONENT_FSAL, "KVFS mknod %s: attributes not set: %s", name, kvfs_last_error());

  *new_obj = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_symlink(struct fsal_obj_handle* dir_hdl, const char* name,
                                  const char* link_path, struct fsal_attrlist* attrs_in,
                                  struct fsal_obj_handle** new_obj,
                                  struct fsal_attrlist* attrs_out) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  struct kvfs_export* exp = dir->export;
  struct kvfs_new_object obj = kvfs_new_object(exp, attrs_in, 0777);
  struct kvfs_attr attr;
  int err;

  err = kvfs_core_symlink(exp->fs, dir->ino, name, link_path, &obj, &attr);
  if (err != 0) return kvfs_dir_error("symlink", exp->fs, dir->ino, err);
  err = kvfs_set_remaining(exp, &attr, attrs_in);
  if (err != 0)
    LogWarn(COMPONENT_FSAL, "KVFS symlink %s: attributes not set: %s", name, kvfs_last_error());

  *new_obj = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_readlink(struct fsal_obj_handle* obj_hdl,
                                   struct gsh_buffdesc* link_content, bool refresh) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  char* buf;
  size_t len = 0;
  int err;

  (void)refresh;
  if (obj_hdl->type != SYMBOLIC_LINK) return fsalstat(ERR_FSAL_INVAL, 0);

  buf = gsh_malloc(KVFS_MAX_SYMLINK + 1);
  err = kvfs_core_readlink(hdl->export->fs, hdl->ino, buf, KVFS_MAX_SYMLINK + 1, &len);
  if (err != 0) {
    gsh_free(buf);
    return kvfs_obj_error("readlink", hdl->ino, err);
  }
  link_content->addr = buf;
  link_content->len = len + 1; /* with the NUL, as Ganesha expects */
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_getattrs(struct fsal_obj_handle* obj_hdl,
                                   struct fsal_attrlist* attrs_out) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_attr attr;
  int err;

  err = kvfs_core_getattr(hdl->export->fs, hdl->ino, &attr);
  if (err != 0) {
    if (attrs_out->request_mask & ATTR_RDATTR_ERR) attrs_out->valid_mask = ATTR_RDATTR_ERR;
    return kvfs_obj_error("getattr", hdl->ino, err);
  }
  kvfs_to_fsal_attrs(hdl->export, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_setattr2(struct fsal_obj_handle* obj_hdl, bool bypass,
                                   struct state_t* state, struct fsal_attrlist* attrs_set) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_setattr req;
  fsal_status_t status = {ERR_FSAL_NO_ERROR, 0};
  bool has_lock = false;
  int err;

  kvfs_from_fsal_attrs(attrs_set, kvfs_umask(hdl->export), &req);
  if (req.mask & KVFS_SET_SIZE) {
    if (obj_hdl->type != REGULAR_FILE) return fsalstat(ERR_FSAL_INVAL, EINVAL);
    /* A truncate without an open state must respect other
     * clients' deny-write share reservations. */
    if (state == NULL) {
      PTHREAD_RWLOCK_rdlock(&obj_hdl->obj_lock);
      has_lock = true;
      status = check_share_conflict(&hdl->share, FSAL_O_WRITE, bypass);
      if (FSAL_IS_ERROR(status)) goto out;
    }
  }
  if (req.mask == 0) goto out;

  err = kvfs_core_setattr(hdl->export->fs, hdl->ino, &req, NULL);
  if (err != 0) status = kvfs_obj_error("setattr", hdl->ino, err);
out:
  if (has_lock) PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  return status;
}

static fsal_status_t kvfs_link(struct fsal_obj_handle* obj_hdl, struct fsal_obj_handle* destdir_hdl,
                               const char* name) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_handle* dir = kvfs_hdl(destdir_hdl);
  struct kvfs_attr attr;
  int err;

  err = kvfs_core_link(hdl->export->fs, hdl->ino, dir->ino, name, NULL);
  if (err == ENOENT && kvfs_is_gone(kvfs_core_getattr(hdl->export->fs, hdl->ino, &attr)))
    return kvfs_obj_error("link", hdl->ino, err);
  if (err != 0) return kvfs_dir_error("link", hdl->export->fs, dir->ino, err);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_rename(struct fsal_obj_handle* obj_hdl,
                                 struct fsal_obj_handle* olddir_hdl, const char* old_name,
                                 struct fsal_obj_handle* newdir_hdl, const char* new_name) {
  struct kvfs_handle* olddir = kvfs_hdl(olddir_hdl);
  struct kvfs_handle* newdir = kvfs_hdl(newdir_hdl);
  kvfs_fs* fs = olddir->export->fs;
  struct kvfs_attr attr;
  int err;

  (void)obj_hdl;
  err = kvfs_core_rename(fs, olddir->ino, old_name, newdir->ino, new_name);
  if (err == ENOENT && kvfs_is_gone(kvfs_core_getattr(fs, newdir->ino, &attr)))
    return kvfs_obj_error("rename", newdir->ino, err);
  if (err != 0) return kvfs_dir_error("rename", fs, olddir->ino, err);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_unlink(struct fsal_obj_handle* dir_hdl, struct fsal_obj_handle* obj_hdl,
                                 const char* name) {
  struct kvfs_handle* dir = kvfs_hdl(dir_hdl);
  kvfs_fs* fs = dir->export->fs;
  int err;

  if (obj_hdl->type == DIRECTORY)
    err = kvfs_core_rmdir(fs, dir->ino, name);
  else
    err = kvfs_core_unlink(fs, dir->ino, name);
  if (err != 0) return kvfs_dir_error("unlink", fs, dir->ino, err);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

/* --- Open files -----------------------------------------------------
 *
 * KVFS has no file descriptors. A struct kvfs_fd records the open mode so
 * that Ganesha's helpers can enforce share reservations, and for open
 * states (NFSv4 OPEN, NLM share, 9P fid) whether the core was told the file
 * is open: kvfs_core_open_file()/kvfs_core_close_file() bracket the state, so the
 * contents of a file unlinked while open stay readable until it is closed.
 * The per-object global fd is only opened by a stateless open2; stateless
 * I/O checks share reservations without it (see kvfs_find_fd).
 */

static inline struct kvfs_fd* kvfs_state_fd(struct state_t* state) {
  return (struct kvfs_fd*)(state + 1);
}

static fsal_status_t kvfs_open_func(struct fsal_obj_handle* obj_hdl, fsal_openflags_t openflags,
                                    struct fsal_fd* fd) {
  (void)obj_hdl;
  fd->openflags = FSAL_O_NFS_FLAGS(openflags);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_close_func(struct fsal_obj_handle* obj_hdl, struct fsal_fd* fd) {
  (void)obj_hdl;
  fd->openflags = FSAL_O_CLOSED;
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_close(struct fsal_obj_handle* obj_hdl) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  fsal_status_t status = {ERR_FSAL_NO_ERROR, 0};

  PTHREAD_RWLOCK_wrlock(&obj_hdl->obj_lock);
  if (hdl->global_fd.fsal_fd.openflags == FSAL_O_CLOSED)
    status = fsalstat(ERR_FSAL_NOT_OPENED, 0);
  else
    hdl->global_fd.fsal_fd.openflags = FSAL_O_CLOSED;
  PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  return status;
}

/* Truncates the file to zero bytes for an open with FSAL_O_TRUNC. Ganesha
 * checks open permissions only after an open by name (or MDCACHE's open by
 * handle on its behalf) returns, so check write access before destroying
 * data. */
static int kvfs_truncate(struct kvfs_handle* hdl) {
  struct kvfs_setattr req = {.mask = KVFS_SET_SIZE, .size = 0};
  fsal_status_t status =
      hdl->obj_handle.obj_ops->test_access(&hdl->obj_handle, FSAL_WRITE_ACCESS, NULL, NULL, false);

  if (FSAL_IS_ERROR(status)) return status.major == ERR_FSAL_PERM ? EPERM : EACCES;
  return kvfs_core_setattr(hdl->export->fs, hdl->ino, &req, NULL);
}

/* Fills attrs_out after an open; honours ATTR_RDATTR_ERR. */
static fsal_status_t kvfs_open_attrs(struct kvfs_handle* hdl, struct fsal_attrlist* attrs_out) {
  struct kvfs_attr attr;
  int err;

  if (attrs_out == NULL) return fsalstat(ERR_FSAL_NO_ERROR, 0);
  err = kvfs_core_getattr(hdl->export->fs, hdl->ino, &attr);
  if (err == 0) {
    kvfs_to_fsal_attrs(hdl->export, &attr, attrs_out);
    return fsalstat(ERR_FSAL_NO_ERROR, 0);
  }
  if (attrs_out->request_mask & ATTR_RDATTR_ERR) {
    attrs_out->valid_mask = ATTR_RDATTR_ERR;
    return fsalstat(ERR_FSAL_NO_ERROR, 0);
  }
  return kvfs_obj_error("getattr", hdl->ino, err);
}

static fsal_status_t kvfs_open_by_handle(struct kvfs_handle* hdl, struct state_t* state,
                                         fsal_openflags_t openflags,
                                         enum fsal_create_mode createmode, fsal_verifier_t verifier,
                                         struct fsal_attrlist* attrs_out, bool* caller_perm_check) {
  struct fsal_obj_handle* obj_hdl = &hdl->obj_handle;
  kvfs_fs* fs = hdl->export->fs;
  struct kvfs_fd* fd = state != NULL ? kvfs_state_fd(state) : &hdl->global_fd;
  bool opened_core = false;
  fsal_status_t status;
  int err = 0;

  if (obj_hdl->type == DIRECTORY) return fsalstat(ERR_FSAL_ISDIR, 0);
  if (obj_hdl->type != REGULAR_FILE) return fsalstat(ERR_FSAL_INVAL, 0);

  PTHREAD_RWLOCK_wrlock(&obj_hdl->obj_lock);
  if (state != NULL) {
    status = check_share_conflict(&hdl->share, openflags, false);
    if (FSAL_IS_ERROR(status)) {
      PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
      return status;
    }
    update_share_counters(&hdl->share, FSAL_O_CLOSED, openflags);
    if (!fd->core_open) {
      err = kvfs_core_open_file(fs, hdl->ino);
      opened_core = err == 0;
    }
  }
  if (err == 0 && (openflags & FSAL_O_TRUNC)) err = kvfs_truncate(hdl);
  if (err == 0 && createmode >= FSAL_EXCLUSIVE && createmode != FSAL_EXCLUSIVE_9P) {
    struct kvfs_attr attr;
    struct fsal_attrlist current;

    err = kvfs_core_getattr(fs, hdl->ino, &attr);
    if (err == 0) {
      fsal_prepare_attrs(&current, ATTRS_POSIX);
      kvfs_to_fsal_attrs(hdl->export, &attr, &current);
      if (!check_verifier_attrlist(&current, verifier, false)) err = EEXIST;
      fsal_release_attrs(&current);
    }
  }

  if (err != 0) {
    if (opened_core) (void)kvfs_core_close_file(fs, hdl->ino);
    if (state != NULL) update_share_counters(&hdl->share, openflags, FSAL_O_CLOSED);
    PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
    return kvfs_obj_error("open", hdl->ino, err);
  }
  if (opened_core) fd->core_open = true;
  fd->fsal_fd.openflags = FSAL_O_NFS_FLAGS(openflags);
  PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);

  /* No permission check was done here. */
  *caller_perm_check = true;
  return kvfs_open_attrs(hdl, attrs_out);
}

/* Creates `name` as the create mode asks. Sets *created. */
static int kvfs_open_create(struct kvfs_handle* dir, const char* name,
                            enum fsal_create_mode createmode, struct fsal_attrlist* attrs_set,
                            fsal_verifier_t verifier, struct kvfs_attr* attr, bool* created) {
  struct kvfs_export* exp = dir->export;
  struct kvfs_new_object obj = kvfs_new_object(exp, attrs_set, 0644);
  int err;

  *created = false;
  if (createmode == FSAL_NO_CREATE) return kvfs_core_lookup(exp->fs, dir->ino, name, attr);

  if (createmode == FSAL_UNCHECKED) {
    err = kvfs_core_lookup(exp->fs, dir->ino, name, attr);
    if (err != ENOENT) return err;
  }

  err = kvfs_core_create(exp->fs, dir->ino, name, &obj, attr);
  if (err == 0) {
    *created = true;
    return 0;
  }
  if (err != EEXIST || createmode == FSAL_GUARDED) return err;

  /* UNCHECKED lost a race with another creator: open the winner.
   * EXCLUSIVE: a retransmission carries the same verifier. */
  err = kvfs_core_lookup(exp->fs, dir->ino, name, attr);
  if (err != 0 || createmode < FSAL_EXCLUSIVE || createmode == FSAL_EXCLUSIVE_9P) return err;
  if (attr->type == KVFS_TYPE_REGULAR) {
    struct fsal_attrlist current;
    bool match;

    fsal_prepare_attrs(&current, ATTRS_POSIX);
    kvfs_to_fsal_attrs(exp, attr, &current);
    match = check_verifier_attrlist(&current, verifier, false);
    fsal_release_attrs(&current);
    if (match) return 0;
  }
  return EEXIST;
}

static fsal_status_t kvfs_open_by_name(struct kvfs_handle* dir, struct state_t* state,
                                       fsal_openflags_t openflags, enum fsal_create_mode createmode,
                                       const char* name, struct fsal_attrlist* attrs_set,
                                       fsal_verifier_t verifier, struct fsal_obj_handle** new_obj,
                                       struct fsal_attrlist* attrs_out, bool* caller_perm_check) {
  struct kvfs_export* exp = dir->export;
  kvfs_fs* fs = exp->fs;
  struct kvfs_handle* hdl;
  struct kvfs_attr attr;
  struct kvfs_fd* fd;
  bool created;
  int err;

  err = kvfs_open_create(dir, name, createmode, attrs_set, verifier, &attr, &created);
  if (err != 0) return kvfs_dir_error("open", fs, dir->ino, err);

  if (attr.type == KVFS_TYPE_DIRECTORY) return fsalstat(ERR_FSAL_ISDIR, 0);
  if (attr.type == KVFS_TYPE_SYMLINK) return fsalstat(ERR_FSAL_SYMLINK, 0);
  if (attr.type != KVFS_TYPE_REGULAR) return fsalstat(ERR_FSAL_INVAL, 0);

  hdl = kvfs_alloc_handle(exp, &attr);
  if (created) {
    /* Times (an exclusive create's verifier), size. */
    err = kvfs_set_remaining(exp, &attr, attrs_set);
  } else if (openflags & FSAL_O_TRUNC) {
    err = kvfs_truncate(hdl);
    if (err == 0) err = kvfs_core_getattr(fs, attr.ino, &attr);
  }
  if (err == 0 && state != NULL) err = kvfs_core_open_file(fs, attr.ino);
  if (err != 0) {
    fsal_status_t status = kvfs_obj_error("open", attr.ino, err);

    kvfs_release(&hdl->obj_handle);
    if (created) (void)kvfs_core_unlink(fs, dir->ino, name);
    return status;
  }

  if (state != NULL) {
    fd = kvfs_state_fd(state);
    fd->core_open = true;
    /* A new handle: nobody else holds a share on it yet; MDCACHE
     * merges it into an existing handle (kvfs_merge) if any. */
    PTHREAD_RWLOCK_wrlock(&hdl->obj_handle.obj_lock);
    update_share_counters(&hdl->share, FSAL_O_CLOSED, openflags);
    PTHREAD_RWLOCK_unlock(&hdl->obj_handle.obj_lock);
  } else {
    fd = &hdl->global_fd;
  }
  fd->fsal_fd.openflags = FSAL_O_NFS_FLAGS(openflags);

  *new_obj = &hdl->obj_handle;
  /* Creating checked nothing either, but Ganesha checked the
   * directory; an existing file needs the caller's check. */
  *caller_perm_check = !created;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_open2(struct fsal_obj_handle* obj_hdl, struct state_t* state,
                                fsal_openflags_t openflags, enum fsal_create_mode createmode,
                                const char* name, struct fsal_attrlist* attrs_set,
                                fsal_verifier_t verifier, struct fsal_obj_handle** new_obj,
                                struct fsal_attrlist* attrs_out, bool* caller_perm_check) {
  struct fsal_attrlist verifier_attrs;

  /* An exclusive create stores its verifier in atime/mtime, as
   * Ganesha's other FSALs do (check_verifier_attrlist reads it). */
  if (createmode >= FSAL_EXCLUSIVE) {
    if (attrs_set == NULL) {
      memset(&verifier_attrs, 0, sizeof(verifier_attrs));
      attrs_set = &verifier_attrs;
    }
    set_common_verifier(attrs_set, verifier, false);
  }

  if (name == NULL)
    return kvfs_open_by_handle(kvfs_hdl(obj_hdl), state, openflags, createmode, verifier, attrs_out,
                               caller_perm_check);
  return kvfs_open_by_name(kvfs_hdl(obj_hdl), state, openflags, createmode, name, attrs_set,
                           verifier, new_obj, attrs_out, caller_perm_check);
}

static fsal_openflags_t kvfs_status2(struct fsal_obj_handle* obj_hdl, struct state_t* state) {
  (void)obj_hdl;
  return kvfs_state_fd(state)->fsal_fd.openflags;
}

static fsal_status_t kvfs_reopen2(struct fsal_obj_handle* obj_hdl, struct state_t* state,
                                  fsal_openflags_t openflags) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_fd* fd = kvfs_state_fd(state);
  kvfs_fs* fs = hdl->export->fs;
  fsal_openflags_t old_openflags;
  fsal_status_t status;
  bool opened_core = false;
  int err = 0;

  PTHREAD_RWLOCK_wrlock(&obj_hdl->obj_lock);
  old_openflags = fd->fsal_fd.openflags;
  status = check_share_conflict(&hdl->share, openflags, false);
  if (FSAL_IS_ERROR(status)) {
    PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
    return status;
  }
  update_share_counters(&hdl->share, old_openflags, openflags);

  if (!fd->core_open) {
    err = kvfs_core_open_file(fs, hdl->ino);
    opened_core = err == 0;
  }
  if (err == 0 && (openflags & FSAL_O_TRUNC)) err = kvfs_truncate(hdl);
  if (err != 0) {
    if (opened_core) (void)kvfs_core_close_file(fs, hdl->ino);
    update_share_counters(&hdl->share, openflags, old_openflags);
    PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
    return kvfs_obj_error("reopen", hdl->ino, err);
  }
  if (opened_core) fd->core_open = true;
  fd->fsal_fd.openflags = FSAL_O_NFS_FLAGS(openflags);
  PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

static fsal_status_t kvfs_close2(struct fsal_obj_handle* obj_hdl, struct state_t* state) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_fd* fd = kvfs_state_fd(state);
  int err = 0;

  PTHREAD_RWLOCK_wrlock(&obj_hdl->obj_lock);
  if (state->state_type == STATE_TYPE_SHARE || state->state_type == STATE_TYPE_NLM_SHARE ||
      state->state_type == STATE_TYPE_9P_FID)
    update_share_counters(&hdl->share, fd->fsal_fd.openflags, FSAL_O_CLOSED);
  if (fd->core_open) {
    err = kvfs_core_close_file(hdl->export->fs, hdl->ino);
    fd->core_open = false;
  }
  fd->fsal_fd.openflags = FSAL_O_CLOSED;
  PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);

  if (err != 0) return kvfs_obj_error("close", hdl->ino, err);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

/* Checks the share reservation / open mode for an I/O, as Ganesha's helper
 * defines it. On success *has_lock says whether obj_lock is held (read).
 *
 * Stateless I/O (NFSv3, NFSv4 with the anonymous stateid) only checks the
 * share reservations, as fsal_reopen_obj() does, without "opening" the
 * global fd: Ganesha counts an open global fd in open_fd_count, whose hard
 * limit (99% of RLIMIT_NOFILE) a client reading 100K files reaches faster
 * than MDCACHE's LRU thread closes them, and from then on every stateless
 * READ got NFS3ERR_JUKEBOX (docs/benchmarks.md). KVFS has no descriptors to
 * limit, so there is nothing to count. */
static fsal_status_t kvfs_find_fd(struct kvfs_handle* hdl, bool bypass, struct state_t* state,
                                  fsal_openflags_t openflags, bool* has_lock) {
  if (state == NULL) {
    fsal_status_t status = fsalstat(ERR_FSAL_NO_ERROR, 0);

    PTHREAD_RWLOCK_rdlock(&hdl->obj_handle.obj_lock);
    if (openflags != FSAL_O_ANY) status = check_share_conflict(&hdl->share, openflags, bypass);
    if (FSAL_IS_ERROR(status)) {
      PTHREAD_RWLOCK_unlock(&hdl->obj_handle.obj_lock);
      *has_lock = false;
      return status;
    }
    *has_lock = true;
    return status;
  }

  struct kvfs_fd temp_fd = {.fsal_fd = {.openflags = FSAL_O_CLOSED}};
  struct fsal_fd* out_fd = &temp_fd.fsal_fd;
  bool closefd = false;
  bool reusing_open_state_fd = false;

  /* closefd (a temporary "fd") needs no cleanup: fds are only flags. */
  return fsal_find_fd(&out_fd, &hdl->obj_handle, &hdl->global_fd.fsal_fd, &hdl->share, bypass,
                      state, openflags, kvfs_open_func, kvfs_close_func, has_lock, &closefd, false,
                      &reusing_open_state_fd);
}

static void kvfs_read2(struct fsal_obj_handle* obj_hdl, bool bypass, fsal_async_cb done_cb,
                       struct fsal_io_arg* read_arg, void* caller_arg) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  fsal_status_t status;
  bool has_lock = false;
  size_t nread = 0;
  bool eof = false;
  int err;

  if (read_arg->info != NULL) {
    /* READ_PLUS is not supported. */
    done_cb(obj_hdl, fsalstat(ERR_FSAL_NOTSUPP, 0), read_arg, caller_arg);
    return;
  }
  if (obj_hdl->type != REGULAR_FILE) {
    done_cb(obj_hdl, fsalstat(obj_hdl->type == DIRECTORY ? ERR_FSAL_ISDIR : ERR_FSAL_INVAL, 0),
            read_arg, caller_arg);
    return;
  }

  status = kvfs_find_fd(hdl, bypass, read_arg->state, FSAL_O_READ, &has_lock);
  if (!FSAL_IS_ERROR(status)) {
    err = kvfs_core_read(hdl->export->fs, hdl->ino, read_arg->offset, read_arg->iov,
                         read_arg->iov_count, &nread, &eof);
    if (err != 0) {
      status = kvfs_obj_error("read", hdl->ino, err);
    } else {
      read_arg->io_amount = nread;
      read_arg->end_of_file = eof;
    }
  }
  if (has_lock) PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  done_cb(obj_hdl, status, read_arg, caller_arg);
}

static void kvfs_write2(struct fsal_obj_handle* obj_hdl, bool bypass, fsal_async_cb done_cb,
                        struct fsal_io_arg* write_arg, void* caller_arg) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  fsal_status_t status;
  bool has_lock = false;
  size_t total = 0;
  int err, i;

  if (obj_hdl->type != REGULAR_FILE) {
    done_cb(obj_hdl, fsalstat(obj_hdl->type == DIRECTORY ? ERR_FSAL_ISDIR : ERR_FSAL_INVAL, 0),
            write_arg, caller_arg);
    return;
  }

  status = kvfs_find_fd(hdl, bypass, write_arg->state, FSAL_O_WRITE, &has_lock);
  if (!FSAL_IS_ERROR(status)) {
    for (i = 0; i < write_arg->iov_count; i++) total += write_arg->iov[i].iov_len;
    /* fsal_stable: FILE_SYNC/DATA_SYNC asked -> durable now;
     * UNSTABLE -> durable at COMMIT (kvfs_core_fsync). */
    err = kvfs_core_write(hdl->export->fs, hdl->ino, write_arg->offset, write_arg->iov,
                          write_arg->iov_count, write_arg->fsal_stable, NULL);
    if (err != 0)
      status = kvfs_obj_error("write", hdl->ino, err);
    else
      write_arg->io_amount = total;
  }
  if (has_lock) PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  done_cb(obj_hdl, status, write_arg, caller_arg);
}

static fsal_status_t kvfs_commit2(struct fsal_obj_handle* obj_hdl, off_t offset, size_t len) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  int err;

  (void)offset;
  (void)len;
  err = kvfs_core_fsync(hdl->export->fs, hdl->ino);
  if (err != 0) return kvfs_obj_error("commit", hdl->ino, err);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

/* NFSv4.2 ALLOCATE. KVFS keeps no unwritten extents and reserves no space
 * (an export's capacity is not a quota), so allocating a range only makes
 * the file at least offset + length long, in one core call, atomic with
 * concurrent writes. DEALLOCATE (punching holes) is not supported. */
static fsal_status_t kvfs_fallocate(struct fsal_obj_handle* obj_hdl, struct state_t* state,
                                    uint64_t offset, uint64_t length, bool allocate) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);
  struct kvfs_setattr req = {.mask = KVFS_SET_SIZE | KVFS_SET_SIZE_GROW_ONLY};
  struct kvfs_attr attr;
  fsal_status_t status;
  bool has_lock = false;
  int err;

  if (!allocate) return fsalstat(ERR_FSAL_NOTSUPP, 0);
  if (obj_hdl->type != REGULAR_FILE)
    return fsalstat(obj_hdl->type == DIRECTORY ? ERR_FSAL_ISDIR : ERR_FSAL_INVAL, 0);
  if (length > UINT64_MAX - offset) return fsalstat(ERR_FSAL_FBIG, 0);

  status = kvfs_find_fd(hdl, false, state, FSAL_O_WRITE, &has_lock);
  if (!FSAL_IS_ERROR(status)) {
    req.size = offset + length;
    err = kvfs_core_setattr(hdl->export->fs, hdl->ino, &req, &attr);
    if (err != 0) status = kvfs_obj_error("allocate", hdl->ino, err);
  }
  if (has_lock) PTHREAD_RWLOCK_unlock(&obj_hdl->obj_lock);
  return status;
}

/* Byte-range locks are arbitrated by Ganesha's state layer (SAL), which
 * sees every client of the store since one server process owns it; the
 * FSAL has nothing to enforce and only reports "no conflict". */
static fsal_status_t kvfs_lock_op2(struct fsal_obj_handle* obj_hdl, struct state_t* state,
                                   void* owner, fsal_lock_op_t lock_op,
                                   fsal_lock_param_t* request_lock,
                                   fsal_lock_param_t* conflicting_lock) {
  (void)state;
  (void)owner;
  (void)request_lock;
  if (obj_hdl->type != REGULAR_FILE) return fsalstat(ERR_FSAL_INVAL, 0);
  switch (lock_op) {
    case FSAL_OP_LOCKT:
    case FSAL_OP_LOCK:
    case FSAL_OP_UNLOCK:
      if (conflicting_lock != NULL) conflicting_lock->lock_type = FSAL_NO_LOCK;
      return fsalstat(ERR_FSAL_NO_ERROR, 0);
    default:
      return fsalstat(ERR_FSAL_NOTSUPP, 0);
  }
}

/* --- Handles ------------------------------------------------------- */

static fsal_status_t kvfs_handle_to_wire(const struct fsal_obj_handle* obj_hdl,
                                         fsal_digesttype_t output_type,
                                         struct gsh_buffdesc* fh_desc) {
  const struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);

  switch (output_type) {
    case FSAL_DIGEST_NFSV3:
    case FSAL_DIGEST_NFSV4:
      if (fh_desc->len < KVFS_HANDLE_SIZE) {
        LogMajor(COMPONENT_FSAL, "KVFS: handle buffer too small: %zu < %d", fh_desc->len,
                 KVFS_HANDLE_SIZE);
        return fsalstat(ERR_FSAL_TOOSMALL, 0);
      }
      memcpy(fh_desc->addr, hdl->wire, KVFS_HANDLE_SIZE);
      fh_desc->len = KVFS_HANDLE_SIZE;
      return fsalstat(ERR_FSAL_NO_ERROR, 0);
    default:
      return fsalstat(ERR_FSAL_SERVERFAULT, 0);
  }
}

/* The key MDCACHE hashes objects by: the whole wire handle, so objects of
 * two exports of one database never share a cache entry. */
static void kvfs_handle_to_key(struct fsal_obj_handle* obj_hdl, struct gsh_buffdesc* fh_desc) {
  struct kvfs_handle* hdl = kvfs_hdl(obj_hdl);

  fh_desc->addr = hdl->wire;
  fh_desc->len = KVFS_HANDLE_SIZE;
}

void kvfs_handle_ops_init(struct fsal_obj_ops* ops) {
  fsal_default_obj_ops_init(ops);

  ops->release = kvfs_release;
  ops->merge = kvfs_merge;
  ops->lookup = kvfs_lookup;
  ops->readdir = kvfs_readdir;
  ops->compute_readdir_cookie = kvfs_compute_readdir_cookie;
  ops->dirent_cmp = kvfs_dirent_cmp;
  ops->mkdir = kvfs_mkdir;
  ops->mknode = kvfs_mknode;
  ops->symlink = kvfs_symlink;
  ops->readlink = kvfs_readlink;
  ops->getattrs = kvfs_getattrs;
  ops->setattr2 = kvfs_setattr2;
  ops->link = kvfs_link;
  ops->rename = kvfs_rename;
  ops->unlink = kvfs_unlink;
  ops->close = kvfs_close;
  ops->open2 = kvfs_open2;
  ops->status2 = kvfs_status2;
  ops->reopen2 = kvfs_reopen2;
  ops->read2 = kvfs_read2;
  ops->write2 = kvfs_write2;
  ops->commit2 = kvfs_commit2;
  ops->fallocate = kvfs_fallocate;
  ops->lock_op2 = kvfs_lock_op2;
  ops->close2 = kvfs_close2;
  ops->handle_to_wire = kvfs_handle_to_wire;
  ops->handle_to_key = kvfs_handle_to_key;
}

/* --- Export methods that make handles ------------------------------ */

fsal_status_t kvfs_lookup_path(struct fsal_export* exp_hdl, const char* path,
                               struct fsal_obj_handle** handle, struct fsal_attrlist* attrs_out) {
  struct kvfs_export* exp = container_of(exp_hdl, struct kvfs_export, export);
  const char* export_path = NULL;
  const char* rest = "";
  struct kvfs_attr attr;
  char* full;
  size_t n;
  int err;

  /* `path` is the export's path, or a path below it (an NFSv3 MOUNT of
   * a subdirectory): resolve the rest inside the subtree. */
  if (op_ctx != NULL && op_ctx->ctx_fullpath != NULL) export_path = CTX_FULLPATH(op_ctx);
  if (export_path != NULL) {
    n = strlen(export_path);
    while (n > 1 && export_path[n - 1] == '/') n--;
    if (strncmp(path, export_path, n) != 0 ||
        (path[n] != '\0' && path[n] != '/' && !(n == 1 && export_path[0] == '/'))) {
      LogInfo(COMPONENT_FSAL, "KVFS: path %s is not inside export %s", path, export_path);
      return fsalstat(ERR_FSAL_NOENT, ENOENT);
    }
    rest = path + n;
  }
  if (strstr(rest, "..") != NULL) return fsalstat(ERR_FSAL_NOENT, ENOENT);

  full = gsh_malloc(strlen(exp->subtree) + strlen(rest) + 2);
  sprintf(full, "%s/%s", exp->subtree, rest);
  err = kvfs_core_resolve_path(exp->fs, full, false, &attr);
  gsh_free(full);
  if (err != 0) return kvfs_status(err);

  *handle = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}

fsal_status_t kvfs_create_handle(struct fsal_export* exp_hdl, struct gsh_buffdesc* hdl_desc,
                                 struct fsal_obj_handle** handle, struct fsal_attrlist* attrs_out) {
  struct kvfs_export* exp = container_of(exp_hdl, struct kvfs_export, export);
  struct kvfs_attr attr;
  uint64_t ino = 0;
  bool inside = true;
  int err;

  *handle = NULL;
  switch (kvfs_handle_decode(hdl_desc->addr, hdl_desc->len, exp->identity, &ino)) {
    case KVFS_HANDLE_OK:
      break;
    case KVFS_HANDLE_OTHER_EXPORT:
      return fsalstat(ERR_FSAL_STALE, ESTALE);
    default:
      return fsalstat(ERR_FSAL_BADHANDLE, 0);
  }

  err = kvfs_core_getattr(exp->fs, ino, &attr);
  if (err != 0) return kvfs_obj_error("create_handle", ino, err);

  /* A handle naming an object outside this export's subtree (moved
   * away, or forged) is stale here. */
  if (exp->check_subtree) {
    err = kvfs_core_is_within(exp->fs, ino, exp->root_ino, &inside);
    if (err != 0) return kvfs_obj_error("create_handle", ino, err);
    if (!inside) {
      LogDebug(COMPONENT_FSAL, "KVFS: inode %" PRIu64 " is outside subtree %s", ino, exp->subtree);
      return fsalstat(ERR_FSAL_STALE, ESTALE);
    }
  }

  *handle = &kvfs_alloc_handle(exp, &attr)->obj_handle;
  kvfs_fill_attrs(exp, &attr, attrs_out);
  return fsalstat(ERR_FSAL_NO_ERROR, 0);
}
