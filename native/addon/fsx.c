/*
 * fsx: the few file-system calls Node lacks, as an N-API addon (ABI-stable across Node versions).
 *   flock(fd, exclusive) -> true when taken, false when another holder has it (never blocks: the
 *                          caller decides how to wait, so the event loop is never stuck in the kernel)
 *   mknod(path, mode, major, minor) -> undefined (overlay whiteouts are 0/0 character devices)
 * Errors are thrown as Error objects whose `code` is the errno name (EBADF, EEXIST, ...), like Node's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
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

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  napi_create_function(env, "mknod", NAPI_AUTO_LENGTH, js_mknod, NULL, &fn);
  napi_set_named_property(env, exports, "mknod", fn);
  return exports;
}
