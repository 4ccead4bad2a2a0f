/*
 * fsx: the few file-system calls Node lacks, as an N-API addon (ABI-stable across Node versions).
 *   flock(fd, exclusive) -> true when taken, false when another holder has it (never blocks: the
 *                          caller decides how to wait, so the event loop is never stuck in the kernel)
 *   mknod(path, mode, major, minor) -> undefined (overlay whiteouts are 0/0 character devices)
 *   lstatDir(path) -> [names, stats]: a directory's entries (no . and ..) in byte order, joined by
 *                     '/' (never part of a name), and their lstat in one Float64Array of LSTAT_FIELDS
 *                     numbers each (see below). One call per directory instead of one per entry:
 *                     no BigInt, no per-entry object, every value exact (64-bit ones split in halves).
 *   markTopDir(path) -> true when the directory now carries FS_TOPDIR_FL (chattr +T), false when
 *                     its file system has no such flag (not ext2/3/4). See src/store/tmp.ts for why.
 *   getXattr(path, name) -> Buffer, or null when the node has no such attribute
 *   listXattrs(path) -> string[] (empty where the file system has no extended attributes)
 *   setXattr(path, name, value: Uint8Array | string), removeXattr(path, name)
 *                     The l*xattr calls: a symlink's own attributes, never its target's.
 * Errors are thrown as Error objects whose `code` is the errno name (EBADF, EEXIST, ...), like Node's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *call) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", call, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

/* Node's wording for path errors: "ENOENT: No such file or directory, lstat '/a/b'". */
static napi_value throw_errno_path(napi_env env, int err, const char *call, const char *dir, const char *name) {
  char msg[8400];
  const char *code = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s, %s '%s%s%s'", code ? code : "EIO", strerror(err), call, dir, name ? "/" : "", name ? name : "");
  napi_throw_error(env, code ? code : "EIO", msg);
  return NULL;
}

/* RFC 3629 UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

/* A name that is not UTF-8 would reach JS as U+FFFD and then name no file (or another one):
 * refused by name, its bytes escaped as \xNN. */
static napi_value throw_not_utf8(napi_env env, const char *dir, const char *name) {
  char shown[NAME_MAX * 4 + 1], msg[8400];
  size_t at = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p && at + 5 < sizeof shown; p++) {
    if (*p >= 0x20 && *p < 0x7f) shown[at++] = (char)*p;
    else at += (size_t)snprintf(shown + at, sizeof shown - at, "\\x%02x", *p);
  }
  shown[at] = 0;
  snprintf(msg, sizeof msg, "EILSEQ: a file name that is not valid UTF-8 cannot be stored: '%s/%s'", dir, shown);
  napi_throw_error(env, "EILSEQ", msg);
  return NULL;
}

/* A JS string into `buf`; false if it is not one or does not fit. */
static bool string_value(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len = 0;
  return napi_get_value_string_utf8(env, v, buf, cap, &len) == napi_ok && len < cap - 1;
}

/* The first `n` arguments into argv; false if fewer were passed. */
static bool args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= n;
}

/* The one string argument of `usage` into `path`; false (a TypeError thrown) if it is not one or too long. */
static bool path_arg(napi_env env, napi_callback_info info, char *path, size_t cap, const char *usage) {
  napi_value argv[1];
  if (!args(env, info, 1, argv) || !string_value(env, argv[0], path, cap)) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

/* (path, name, ...) string arguments of the xattr calls; false (a TypeError thrown) otherwise. */
static bool path_name_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, char *path, char *name, const char *usage) {
  if (!args(env, info, n, argv) || !string_value(env, argv[0], path, 4096) || !string_value(env, argv[1], name, XATTR_NAME_MAX + 1)) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  bool exclusive = true;
  if (!args(env, info, 2, argv) || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &exclusive) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock(fd: number, exclusive: boolean)");
    return NULL;
  }
  int rc;
  do rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  napi_value out;
  if (rc == 0) { napi_get_boolean(env, true, &out); return out; }
  if (errno == EWOULDBLOCK) { napi_get_boolean(env, false, &out); return out; }
  return throw_errno(env, errno, "flock");
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[4096];
  uint32_t mode = 0, major_ = 0, minor_ = 0;
  if (!args(env, info, 4, argv) || !string_value(env, argv[0], path, sizeof path) ||
      napi_get_value_uint32(env, argv[1], &mode) != napi_ok || napi_get_value_uint32(env, argv[2], &major_) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &minor_) != napi_ok) {
    napi_throw_type_error(env, NULL, "mknod(path: string, mode: number, major: number, minor: number)");
    return NULL;
  }
  if (mknod(path, (mode_t)mode, makedev(major_, minor_)) != 0) return throw_errno(env, errno, "mknod");
  return NULL;
}

/* Per entry, in this order (src/builder/filestat.ts reads them): 64-bit values as high, low 32 bits. */
enum { F_MODE, F_UID, F_GID, F_NLINK, F_SIZE_HI, F_SIZE_LO, F_DEV_HI, F_DEV_LO, F_INO_HI, F_INO_LO,
       F_RDEV_HI, F_RDEV_LO, F_MTIME_SEC, F_MTIME_NSEC, F_CTIME_SEC, F_CTIME_NSEC, LSTAT_FIELDS };

struct dent { char *name; size_t len; };

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

static void put64(double *f, int hi, uint64_t v) {
  f[hi] = (double)(uint32_t)(v >> 32);
  f[hi + 1] = (double)(uint32_t)v;
}

/* Reads every name first (the stream may not be stat'ed while it is open under concurrent
 * renames anyway), sorts them, then fstatat()s each relative to the directory's fd. */
static napi_value js_lstatDir(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_arg(env, info, path, sizeof path, "lstatDir(path: string)")) return NULL;
  /* O_NOATIME: listing a directory for a layer or a cache key is no access of the user's; and on
   * relatime the first listing of a fresh directory writes its inode. Allowed to the owner and to
   * CAP_FOWNER only, so EPERM means: list it the ordinary way. */
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno_path(env, errno, "scandir", path, NULL);
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    int err = errno;
    close(fd);
    return throw_errno_path(env, err, "scandir", path, NULL);
  }
  struct dent *ents = NULL;
  size_t n = 0, cap = 0, total = 0;
  int err = 0;
  char *bad_name = NULL; /* a name that is not UTF-8 */
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (d == NULL) { err = errno; break; }
    if (d->d_name[0] == '.' && (d->d_name[1] == 0 || (d->d_name[1] == '.' && d->d_name[2] == 0))) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      struct dent *grown = realloc(ents, cap * sizeof *ents);
      if (grown == NULL) { err = ENOMEM; break; }
      ents = grown;
    }
    size_t l = strlen(d->d_name);
    if (!utf8_ok((const unsigned char *)d->d_name, l)) {
      err = EILSEQ;
      bad_name = strdup(d->d_name);
      break;
    }
    char *name = malloc(l + 1);
    if (name == NULL) { err = ENOMEM; break; }
    memcpy(name, d->d_name, l + 1);
    ents[n].name = name;
    ents[n++].len = l;
    total += l + 1;
  }
  const char *failed = NULL; /* the entry whose lstat failed; NULL: reading the directory */
  double *stats = NULL;
  char *joined = NULL;
  napi_value out = NULL;
  if (err == 0) {
    qsort(ents, n, sizeof *ents, by_name);
    stats = malloc((n ? n : 1) * LSTAT_FIELDS * sizeof *stats);
    joined = malloc(total + 1);
    if (stats == NULL || joined == NULL) err = ENOMEM;
  }
  size_t at = 0;
  for (size_t i = 0; err == 0 && i < n; i++) {
    struct stat st;
    if (fstatat(dirfd(dir), ents[i].name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      err = errno;
      failed = ents[i].name;
      break;
    }
    double *f = stats + i * LSTAT_FIELDS;
    f[F_MODE] = st.st_mode;
    f[F_UID] = st.st_uid;
    f[F_GID] = st.st_gid;
    f[F_NLINK] = (double)st.st_nlink;
    put64(f, F_SIZE_HI, (uint64_t)st.st_size);
    put64(f, F_DEV_HI, (uint64_t)st.st_dev);
    put64(f, F_INO_HI, (uint64_t)st.st_ino);
    put64(f, F_RDEV_HI, (uint64_t)st.st_rdev);
    f[F_MTIME_SEC] = (double)st.st_mtim.tv_sec;
    f[F_MTIME_NSEC] = (double)st.st_mtim.tv_nsec;
    f[F_CTIME_SEC] = (double)st.st_ctim.tv_sec;
    f[F_CTIME_NSEC] = (double)st.st_ctim.tv_nsec;
    if (i > 0) joined[at++] = '/';
    memcpy(joined + at, ents[i].name, ents[i].len);
    at += ents[i].len;
  }
  closedir(dir);
  if (bad_name != NULL) {
    throw_not_utf8(env, path, bad_name);
    free(bad_name);
  } else if (err != 0) {
    throw_errno_path(env, err, failed ? "lstat" : "scandir", path, failed);
  } else {
    napi_value names, buffer, array, result;
    void *data = NULL;
    size_t count = n * LSTAT_FIELDS;
    if (napi_create_string_utf8(env, joined, at, &names) == napi_ok &&
        napi_create_arraybuffer(env, count * sizeof(double), &data, &buffer) == napi_ok &&
        napi_create_typedarray(env, napi_float64_array, count, buffer, 0, &array) == napi_ok &&
        napi_create_array_with_length(env, 2, &result) == napi_ok) {
      if (count > 0) memcpy(data, stats, count * sizeof(double));
      napi_set_element(env, result, 0, names);
      napi_set_element(env, result, 1, array);
      out = result;
    }
  }
  for (size_t i = 0; i < n; i++) free(ents[i].name);
  free(ents);
  free(stats);
  free(joined);
  return out;
}

static napi_value js_markTopDir(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_arg(env, info, path, sizeof path, "markTopDir(path: string)")) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return throw_errno_path(env, errno, "open", path, NULL);
  int flags = 0, err = 0;
  bool marked = false;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
    if (flags & FS_TOPDIR_FL) marked = true;
    else if (ioctl(fd, FS_IOC_SETFLAGS, &(int){flags | FS_TOPDIR_FL}) == 0) marked = true;
    else err = errno;
  } else {
    err = errno;
  }
  close(fd);
  /* No inode flags on this file system (tmpfs, xfs, overlay...): nothing to mark, not an error. */
  if (err != 0 && err != ENOTTY && err != EOPNOTSUPP && err != EINVAL && err != ENOSYS) return throw_errno_path(env, err, "ioctl FS_IOC_SETFLAGS", path, NULL);
  napi_value out;
  napi_get_boolean(env, marked, &out);
  return out;
}

/*
 * Sized first (a size-0 call): most nodes have no attributes, which then costs one syscall and no
 * buffer; the kernel also allocates whatever size it is asked to fill. A value or list that grows
 * between the two calls (ERANGE) is asked again.
 */
static napi_value js_getXattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  char path[4096], name[XATTR_NAME_MAX + 1];
  if (!path_name_args(env, info, 2, argv, path, name, "getXattr(path: string, name: string)")) return NULL;
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    char *value = size > 0 ? malloc((size_t)size) : NULL;
    if (size > 0 && value == NULL) return throw_errno(env, ENOMEM, "getXattr");
    ssize_t got = size > 0 ? lgetxattr(path, name, value, (size_t)size) : size;
    int err = errno;
    if (got >= 0) napi_create_buffer_copy(env, (size_t)got, value, NULL, &out);
    free(value);
    if (got >= 0) return out;
    if (err == ERANGE) continue;
    if (err == ENODATA || err == ENOTSUP) { napi_get_null(env, &out); return out; }
    return throw_errno_path(env, err, "lgetxattr", path, NULL);
  }
}

static napi_value js_listXattrs(napi_env env, napi_callback_info info) {
  char path[4096];
  if (!path_arg(env, info, path, sizeof path, "listXattrs(path: string)")) return NULL;
  napi_value out, name;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    char *list = size > 0 ? malloc((size_t)size) : NULL;
    if (size > 0 && list == NULL) return throw_errno(env, ENOMEM, "listXattrs");
    ssize_t len = size > 0 ? llistxattr(path, list, (size_t)size) : size;
    int err = errno;
    if (len < 0 && err == ERANGE) {
      free(list);
      continue;
    }
    if (len < 0 && err != ENOTSUP) {
      free(list);
      return throw_errno_path(env, err, "llistxattr", path, NULL);
    }
    napi_create_array(env, &out);
    uint32_t i = 0;
    for (ssize_t at = 0; at < len; at += (ssize_t)strlen(list + at) + 1) {
      napi_create_string_utf8(env, list + at, NAPI_AUTO_LENGTH, &name);
      napi_set_element(env, out, i++, name);
    }
    free(list);
    return out;
  }
}

static napi_value js_setXattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[4096], name[XATTR_NAME_MAX + 1];
  const char *usage = "setXattr(path: string, name: string, value: Uint8Array | string)";
  if (!path_name_args(env, info, 3, argv, path, name, usage)) return NULL;
  bool typed = false;
  void *data = NULL;
  size_t len = 0;
  char *text = NULL;
  napi_is_typedarray(env, argv[2], &typed);
  if (typed) {
    napi_typedarray_type type;
    napi_value ab;
    size_t offset;
    if (napi_get_typedarray_info(env, argv[2], &type, &len, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) typed = false;
  } else {
    /* The string's UTF-8 bytes; one byte more than the limit tells a value that is too long. */
    text = malloc(XATTR_SIZE_MAX + 2);
    if (text != NULL && napi_get_value_string_utf8(env, argv[2], text, XATTR_SIZE_MAX + 2, &len) == napi_ok && len <= XATTR_SIZE_MAX) {
      data = text;
      typed = true;
    }
  }
  if (!typed) {
    free(text);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  int rc = lsetxattr(path, name, data, len, 0), err = errno;
  free(text);
  if (rc != 0) return throw_errno_path(env, err, "lsetxattr", path, NULL);
  return NULL;
}

static napi_value js_removeXattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[4096], name[XATTR_NAME_MAX + 1];
  if (!path_name_args(env, info, 2, argv, path, name, "removeXattr(path: string, name: string)")) return NULL;
  if (lremovexattr(path, name) != 0) return throw_errno_path(env, errno, "lremovexattr", path, NULL);
  return NULL;
}

#define FN(name) { #name, NULL, js_##name, NULL, NULL, NULL, napi_enumerable, NULL }

NAPI_MODULE_INIT() {
  const napi_property_descriptor fns[] = {
    FN(flock), FN(mknod), FN(lstatDir), FN(markTopDir), FN(getXattr), FN(listXattrs), FN(setXattr), FN(removeXattr),
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}
