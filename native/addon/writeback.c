/*
 * writeback: start writing a file range back to disk without waiting for it (sync_file_range(2)
 * with SYNC_FILE_RANGE_WRITE), which Node lacks. A large blob is fsync'ed before it is renamed
 * into the store; without this all of it is still dirty then and the fsync writes it all (0.2 s
 * for 400 MB here). Started in pieces while the blob is written, the final fsync only waits for
 * the tail. Loaded on the I/O worker thread, so the module is context-aware (NAPI_MODULE_INIT).
 *   start(fd, offset, length) -> undefined; errors are thrown with the errno name as `code`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  int64_t offset = 0, length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "start(fd: number, offset: number, length: number)");
    return NULL;
  }
  if (sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) != 0) {
    char msg[128];
    const char *name = strerrorname_np(errno);
    snprintf(msg, sizeof msg, "sync_file_range: %s", strerror(errno));
    napi_throw_error(env, name ? name : "EIO", msg);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "start", NAPI_AUTO_LENGTH, js_start, NULL, &fn);
  napi_set_named_property(env, exports, "start", fn);
  return exports;
}
