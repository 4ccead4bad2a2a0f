/*
 * writeback: getting a large blob onto disk without making the page cache carry it, for the I/O
 * worker's blob writer (src/util/io-worker.ts). Loaded on that thread, so the module is
 * context-aware (NAPI_MODULE_INIT). Errors are thrown with the errno name as `code`.
 *
 *   start(fd, offset, length) -> undefined
 *     sync_file_range(2) with SYNC_FILE_RANGE_WRITE, which Node lacks: starts writeback of a range
 *     without waiting, so the fsync before the blob's rename only waits for the tail.
 *
 *   directOpen(fd) -> handle | null
 *   directWrite(handle, bytes: Uint8Array, position) -> undefined
 *   directFinish(handle) -> undefined      directClose(handle) -> undefined
 *     Writes a blob through a second, O_DIRECT descriptor of the same file. A buffered write of a
 *     fresh 400 MB blob fills 400 MB of page cache that nothing reads soon (the layer's files are
 *     in the snapshot), and on this VM first-touching page-cache memory costs ~2.6 ms per MB:
 *     0.6-1.7 s buffered + fsync against 0.25-0.33 s direct for 400 MB (measured, 1 MiB writes).
 *     Writes must be sequential; they are gathered into an aligned buffer and written in whole
 *     4 KiB blocks, and the tail that does not fill a block goes through the ordinary `fd`.
 *     null: the file system refuses O_DIRECT (tmpfs before 6.6, some FUSE); a direct write that
 *     fails with EINVAL moves the rest of the blob to `fd` the same way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

#define ALIGN 4096
#define STAGE (1 << 20)

typedef struct {
  int fd;      /* the caller's descriptor, left open */
  int dfd;     /* ours, O_DIRECT; -1 once closed or given up */
  char *stage; /* ALIGN-aligned, STAGE bytes */
  size_t used;
  int64_t position; /* file offset of stage[0] */
} direct_t;

static void throw_errno(napi_env env, const char *what) {
  char msg[160];
  const char *name = strerrorname_np(errno);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, name ? name : "EIO", msg);
}

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
  if (sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) != 0) throw_errno(env, "sync_file_range");
  return NULL;
}

static void release(direct_t *d) {
  if (d->dfd >= 0) close(d->dfd);
  d->dfd = -1;
  free(d->stage);
  d->stage = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release(data);
  free(data);
}

/* pwrite all of buf at pos, looping over short writes. */
static int write_all(int fd, const char *buf, size_t len, int64_t pos) {
  while (len > 0) {
    ssize_t n = pwrite(fd, buf, len, pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
    pos += n;
  }
  return 0;
}

/* Writes stage[0, len) at d->position: direct while it works, else through the caller's fd. */
static int flush(direct_t *d, size_t len) {
  if (d->dfd >= 0 && len % ALIGN == 0) {
    if (write_all(d->dfd, d->stage, len, d->position) == 0) return 0;
    if (errno != EINVAL) return -1;
    /* Alignment the device does not take: the rest goes buffered. */
    close(d->dfd);
    d->dfd = -1;
  }
  return write_all(d->fd, d->stage, len, d->position);
}

static direct_t *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "expected a handle from directOpen()");
    return NULL;
  }
  return data;
}

static napi_value js_direct_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "directOpen(fd: number)");
    return NULL;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  direct_t *d = dfd < 0 ? NULL : calloc(1, sizeof *d);
  if (d == NULL || posix_memalign((void **)&d->stage, ALIGN, STAGE) != 0) {
    if (dfd >= 0) close(dfd);
    free(d);
    napi_get_null(env, &result);
    return result;
  }
  d->fd = fd;
  d->dfd = dfd;
  napi_create_external(env, d, finalize, NULL, &result);
  return result;
}

static napi_value js_direct_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value arraybuffer;
  int64_t position = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, &arraybuffer, &offset) != napi_ok || type != napi_uint8_array ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok) {
    napi_throw_type_error(env, NULL, "directWrite(handle, bytes: Uint8Array, position: number)");
    return NULL;
  }
  direct_t *d = unwrap(env, argv[0]);
  if (d == NULL) return NULL;
  if (d->stage == NULL || position != d->position + (int64_t)d->used) {
    napi_throw_error(env, "EINVAL", "directWrite: writes must be sequential on an open handle");
    return NULL;
  }
  const char *from = data;
  while (length > 0) {
    size_t n = STAGE - d->used < length ? STAGE - d->used : length;
    memcpy(d->stage + d->used, from, n);
    d->used += n;
    from += n;
    length -= n;
    if (d->used == STAGE) {
      if (flush(d, STAGE) != 0) {
        throw_errno(env, "pwrite");
        return NULL;
      }
      d->position += STAGE;
      d->used = 0;
    }
  }
  return NULL;
}

static napi_value handle_arg(napi_env env, napi_callback_info info, direct_t **out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "expected a handle from directOpen()");
    return NULL;
  }
  *out = unwrap(env, argv[0]);
  return argv[0];
}

static napi_value js_direct_finish(napi_env env, napi_callback_info info) {
  direct_t *d = NULL;
  if (handle_arg(env, info, &d) == NULL || d == NULL) return NULL;
  if (d->stage != NULL && d->used > 0) {
    size_t whole = d->used - d->used % ALIGN;
    int failed = whole > 0 && flush(d, whole) != 0;
    if (!failed && whole < d->used) failed = write_all(d->fd, d->stage + whole, d->used - whole, d->position + (int64_t)whole) != 0;
    if (failed) {
      throw_errno(env, "pwrite");
      release(d);
      return NULL;
    }
    d->position += (int64_t)d->used;
    d->used = 0;
  }
  release(d);
  return NULL;
}

static napi_value js_direct_close(napi_env env, napi_callback_info info) {
  direct_t *d = NULL;
  if (handle_arg(env, info, &d) == NULL || d == NULL) return NULL;
  release(d);
  return NULL;
}

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback cb; } table[] = {
    {"start", js_start},
    {"directOpen", js_direct_open},
    {"directWrite", js_direct_write},
    {"directFinish", js_direct_finish},
    {"directClose", js_direct_close},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    napi_value fn;
    napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, table[i].name, fn);
  }
  return exports;
}
