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

/* The one string argument of `usage` into `path`; false (a TypeError thrown) if it is not one or too long. */
static bool path_arg(napi_env env, napi_callback_info info, char *path, size_t cap, const char *usage) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], path, cap, &len) != napi_ok || len >= cap - 1) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  bool exclusive = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &exclusive) != napi_ok) {
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
  size_t argc = 4;
  napi_value argv[4];
  char path[4096];
  size_t len = 0;
  uint32_t mode = 0, major_ = 0, minor_ = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len >= sizeof path - 1 ||
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
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
  if (err != 0) {
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

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  napi_create_function(env, "mknod", NAPI_AUTO_LENGTH, js_mknod, NULL, &fn);
  napi_set_named_property(env, exports, "mknod", fn);
  napi_create_function(env, "lstatDir", NAPI_AUTO_LENGTH, js_lstatDir, NULL, &fn);
  napi_set_named_property(env, exports, "lstatDir", fn);
  napi_create_function(env, "markTopDir", NAPI_AUTO_LENGTH, js_markTopDir, NULL, &fn);
  napi_set_named_property(env, exports, "markTopDir", fn);
  return exports;
}
