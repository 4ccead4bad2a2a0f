/*
 * deflate: gzip members and raw inflate through libdeflate, as an N-API addon.
 * libdeflate deflates 2-3x faster than zlib at the same ratio, and inflates faster too. It is
 * dlopen()ed at first use (the shared library, libdeflate0 on Debian, is enough: no headers needed,
 * the few prototypes below are its stable API since 1.0), so the addon loads, and says
 * available() == false, on a host without it; callers then keep using zlib.
 *   available() -> boolean
 *   gzipMember(input, level) -> Promise<Buffer>: one whole gzip member of `input` (header with the
 *     'TB' FEXTRA subfield = the member's total size, raw deflate, CRC32, ISIZE). Level 0 and
 *     incompressible input are stored blocks.
 *   inflateRaw(input, size, crc[, into]) -> Promise<Buffer | Uint8Array | null>: inflates the raw
 *     deflate stream that is exactly `input` into exactly `size` bytes whose CRC32 is `crc`; null on
 *     any mismatch. With `into` (a Uint8Array of at least `size` bytes, held until the job ends) the
 *     bytes go there and `into` is what resolves; its contents are undefined after a failure.
 * Work runs on the libuv pool; each pool thread keeps one compressor per level and one decompressor.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <node_api.h>

struct libdeflate_compressor;
struct libdeflate_decompressor;
enum libdeflate_result { LIBDEFLATE_SUCCESS = 0 };

static struct {
  struct libdeflate_compressor *(*alloc_compressor)(int level);
  size_t (*deflate_compress)(struct libdeflate_compressor *, const void *in, size_t in_n, void *out, size_t out_avail);
  size_t (*deflate_compress_bound)(struct libdeflate_compressor *, size_t in_n);
  void (*free_compressor)(struct libdeflate_compressor *);
  struct libdeflate_decompressor *(*alloc_decompressor)(void);
  enum libdeflate_result (*deflate_decompress_ex)(struct libdeflate_decompressor *, const void *in, size_t in_n, void *out,
                                                  size_t out_avail, size_t *in_used, size_t *out_made);
  uint32_t (*crc32)(uint32_t crc, const void *buf, size_t len);
} ld;
static bool ld_ok;
static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

static void ld_load(void) {
  void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return;
#define SYM(field, name) *(void **)&ld.field = dlsym(h, name)
  SYM(alloc_compressor, "libdeflate_alloc_compressor");
  SYM(deflate_compress, "libdeflate_deflate_compress");
  SYM(deflate_compress_bound, "libdeflate_deflate_compress_bound");
  SYM(free_compressor, "libdeflate_free_compressor");
  SYM(alloc_decompressor, "libdeflate_alloc_decompressor");
  SYM(deflate_decompress_ex, "libdeflate_deflate_decompress_ex");
  SYM(crc32, "libdeflate_crc32");
#undef SYM
  ld_ok = ld.alloc_compressor && ld.deflate_compress && ld.deflate_compress_bound && ld.free_compressor &&
          ld.alloc_decompressor && ld.deflate_decompress_ex && ld.crc32;
  /* Level 0 (stored blocks) exists since libdeflate 1.7; older ones count as absent. */
  if (ld_ok) {
    struct libdeflate_compressor *c = ld.alloc_compressor(0);
    ld_ok = c != NULL;
    if (c != NULL) ld.free_compressor(c);
  }
}

static bool ld_available(void) {
  pthread_once(&ld_once, ld_load);
  return ld_ok;
}

/* Pool threads live as long as the process, so their codecs are never freed. */
static __thread struct libdeflate_compressor *tl_comp[10];
static __thread struct libdeflate_decompressor *tl_decomp;

static struct libdeflate_compressor *compressor(int level) {
  if (tl_comp[level] == NULL) tl_comp[level] = ld.alloc_compressor(level);
  return tl_comp[level];
}

/* ---- compression ---- */

enum { SAMPLE = 4096, TRIAL = 40 * 1024, HEADER = 20, TRAILER = 8 };
/* The member's size field and ISIZE are 32 bits: blocks are ~1 MiB, this is only a sanity cap. */
#define MAX_MEMBER_INPUT ((size_t)1 << 30)

/* Order-0 entropy above 7.9 bits per byte in three 4 KiB samples: deflate cannot win anything
 * worth its time (it spends as long failing on random bytes as compressing text). Measured on
 * 4 KiB samples, the entropy of random bytes reads 7.955 +- 0.004, not 8 (the estimate falls short
 * by 255 / (2 * 4096 * ln 2) = 0.045): the old bound of 7.95 sent a third of random blocks through
 * the full deflate. */
#define INCOMPRESSIBLE_BITS 7.9
static bool looks_incompressible(const uint8_t *b, size_t n) {
  if (n < 3 * SAMPLE) return false;
  size_t at[3] = {0, (n >> 1) - SAMPLE / 2, n - SAMPLE};
  for (int s = 0; s < 3; s++) {
    uint32_t counts[256] = {0};
    for (size_t i = at[s]; i < at[s] + SAMPLE; i++) counts[b[i]]++;
    double bits = 0;
    for (int k = 0; k < 256; k++)
      if (counts[k] > 0) bits -= (counts[k] / (double)SAMPLE) * log2(counts[k] / (double)SAMPLE);
    if (bits < INCOMPRESSIBLE_BITS) return false;
  }
  return true;
}

/* High byte entropy can still repeat at short range (one random file twice): a level-1 trial on
 * 40 KiB from the middle says whether deflate would shrink the block. */
static bool shrinks(const uint8_t *b, size_t n, uint8_t *scratch, size_t scratch_n) {
  struct libdeflate_compressor *fast = compressor(1);
  if (fast == NULL) return true; /* out of memory: deflate the block as asked */
  size_t len = n < TRIAL ? n : TRIAL;
  const uint8_t *at = b + ((n - len) >> 1);
  size_t out = ld.deflate_compress(fast, at, len, scratch, scratch_n);
  return out != 0 && out < len - len / 10;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const uint8_t *in;
  size_t in_n;
  int level;
  uint32_t size, crc; /* inflate: expected output */
  bool compress;
  uint8_t *out;
  size_t out_n;
  napi_ref output_ref; /* inflate into a caller's buffer: kept alive while the pool writes it */
  size_t out_cap; /* what out_alloc gave out */
  bool mapped;    /* ... and whether as a mapping */
  bool failed; /* out of memory, or (inflate) the data did not match */
} job_t;

/* Outputs of 256 KiB and more are mapped, not malloc'ed: they are made on pool threads and freed
 * on the main thread when V8 collects them, and glibc kept ~1 MiB blocks in the pool threads'
 * arenas (its mmap threshold rises after the first such free), so a 400 MB pull peaked at
 * 206-236 MB RSS instead of giving the memory back as each buffer died. */
#define MAP_MIN (256u << 10)

static uint8_t *out_alloc(job_t *j, size_t n) {
  j->out_cap = n;
  j->mapped = n >= MAP_MIN;
  if (!j->mapped) return malloc(n > 0 ? n : 1);
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void out_free(job_t *j) {
  if (j->out == NULL) return;
  if (j->mapped) munmap(j->out, j->out_cap);
  else free(j->out);
  j->out = NULL;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24;
}

/* Each pool thread compresses into its own scratch buffer (worst-case size, kept), then copies the
 * member out at its exact size: no ~1 MiB allocation and page faults per block, and the buffers
 * JavaScript holds are no larger than their data. */
static __thread uint8_t *tl_scratch;
static __thread size_t tl_scratch_n;

static uint8_t *scratch(size_t n) {
  if (tl_scratch_n < n) {
    free(tl_scratch);
    tl_scratch = malloc(n);
    tl_scratch_n = tl_scratch == NULL ? 0 : n;
  }
  return tl_scratch;
}

static void member_execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  struct libdeflate_compressor *stored = compressor(0), *c = compressor(j->level);
  if (stored == NULL || c == NULL) {
    j->failed = true;
    return;
  }
  size_t bound = ld.deflate_compress_bound(stored, j->in_n), b = ld.deflate_compress_bound(c, j->in_n);
  if (b > bound) bound = b;
  uint8_t *deflated = scratch(bound);
  if (deflated == NULL) {
    j->failed = true;
    return;
  }
  if (j->level > 0 && looks_incompressible(j->in, j->in_n) && !shrinks(j->in, j->in_n, deflated, bound)) c = stored;
  size_t n = ld.deflate_compress(c, j->in, j->in_n, deflated, bound);
  j->out_n = HEADER + n + TRAILER;
  j->out = n == 0 ? NULL : out_alloc(j, j->out_n);
  if (j->out == NULL) {
    j->failed = true;
    return;
  }
  /* gzip header: FLG = FEXTRA, mtime 0, XFL 0, OS 3 (Unix); XLEN 8 = one subfield 'T','B' of
   * length 4 holding the member's total size, so a reader finds member boundaries without inflating. */
  static const uint8_t head[16] = {0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 8, 0, 'T', 'B', 4, 0};
  memcpy(j->out, head, sizeof head);
  put32(j->out + 16, (uint32_t)j->out_n);
  memcpy(j->out + HEADER, deflated, n);
  put32(j->out + HEADER + n, ld.crc32(0, j->in, j->in_n));
  put32(j->out + HEADER + n + 4, (uint32_t)j->in_n);
}

/* ---- inflate ---- */

static void inflate_execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  if (tl_decomp == NULL) tl_decomp = ld.alloc_decompressor();
  if (j->output_ref == NULL) j->out = out_alloc(j, j->size);
  if (tl_decomp == NULL || j->out == NULL) {
    j->failed = true;
    return;
  }
  size_t used = 0, made = 0;
  enum libdeflate_result r = ld.deflate_decompress_ex(tl_decomp, j->in, j->in_n, j->out, j->size, &used, &made);
  j->out_n = made;
  j->failed = r != LIBDEFLATE_SUCCESS || used != j->in_n || made != j->size || ld.crc32(0, j->out, made) != j->crc;
}

/* ---- N-API glue ---- */

static void free_buffer(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  free(data);
}

/* hint: the mapping's length. */
static void unmap_buffer(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result;
  if (j->output_ref != NULL) {
    /* The caller's buffer: never ours to free; it is the result when the bytes are right. */
    if (status == napi_ok && !j->failed) napi_get_reference_value(env, j->output_ref, &result);
    else napi_get_null(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
    napi_delete_reference(env, j->output_ref);
  } else if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "libdeflate job cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
    out_free(j);
  } else if (j->failed && j->compress) {
    napi_value msg;
    napi_create_string_utf8(env, "libdeflate: out of memory", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, j->deferred, result);
    out_free(j);
  } else if (j->failed) {
    napi_get_null(env, &result);
    napi_resolve_deferred(env, j->deferred, result);
    out_free(j);
  } else {
    if (napi_create_external_buffer(env, j->out_n, j->out, j->mapped ? unmap_buffer : free_buffer, (void *)(uintptr_t)j->out_cap, &result) != napi_ok) {
      void *copy;
      napi_create_buffer_copy(env, j->out_n, j->out, &copy, &result);
      out_free(j);
    }
    napi_resolve_deferred(env, j->deferred, result);
  }
  napi_delete_reference(env, j->input_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

/* `v` as a Uint8Array: its bytes and length. */
static bool uint8_array(napi_env env, napi_value v, void **bytes, size_t *length) {
  bool is;
  napi_typedarray_type type;
  return napi_is_typedarray(env, v, &is) == napi_ok && is &&
         napi_get_typedarray_info(env, v, &type, length, bytes, NULL, NULL) == napi_ok && type == napi_uint8_array;
}

/* Takes a Uint8Array argument (kept alive by a reference while the pool reads it). */
static bool input_arg(napi_env env, napi_value v, job_t *j, size_t max) {
  void *bytes;
  size_t length;
  if (!uint8_array(env, v, &bytes, &length) || length > max) return false;
  j->in = bytes;
  j->in_n = length;
  return napi_create_reference(env, v, 1, &j->input_ref) == napi_ok;
}

static napi_value queue(napi_env env, job_t *j, napi_async_execute_callback execute, const char *name) {
  napi_value promise, resource_name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value js_available(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, ld_available(), &out);
  return out;
}

static napi_value js_gzip_member(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  job_t *j = calloc(1, sizeof *j);
  int32_t level = -1;
  if (j == NULL || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 0 || level > 9 || !ld_available() ||
      !input_arg(env, argv[0], j, MAX_MEMBER_INPUT)) {
    free(j);
    napi_throw_type_error(env, NULL, "gzipMember(input: Uint8Array of at most 1 GiB, level: 0-9) needs libdeflate");
    return NULL;
  }
  j->level = level;
  j->compress = true; /* its failure is out of memory: a rejection, not null */
  return queue(env, j, member_execute, "tsbuild:gzipMember");
}

/* An optional Uint8Array to inflate into, of at least `size` bytes (kept alive while the pool writes it). */
static bool output_arg(napi_env env, napi_value v, job_t *j, size_t size) {
  void *bytes;
  size_t length;
  if (!uint8_array(env, v, &bytes, &length) || length < size || napi_create_reference(env, v, 1, &j->output_ref) != napi_ok) return false;
  j->out = bytes;
  return true;
}

static napi_value js_inflate_raw(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  job_t *j = calloc(1, sizeof *j);
  uint32_t size = 0, crc = 0;
  if (j == NULL || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_uint32(env, argv[1], &size) != napi_ok || napi_get_value_uint32(env, argv[2], &crc) != napi_ok ||
      !ld_available() || !input_arg(env, argv[0], j, UINT32_MAX) || (argc >= 4 && !output_arg(env, argv[3], j, size))) {
    if (j != NULL && j->input_ref != NULL) napi_delete_reference(env, j->input_ref);
    free(j);
    napi_throw_type_error(env, NULL, "inflateRaw(input: Uint8Array, size: number, crc: number, into?: Uint8Array of at least size bytes) needs libdeflate");
    return NULL;
  }
  j->size = size;
  j->crc = crc;
  return queue(env, j, inflate_execute, "tsbuild:inflateRaw");
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "available", NAPI_AUTO_LENGTH, js_available, NULL, &fn);
  napi_set_named_property(env, exports, "available", fn);
  napi_create_function(env, "gzipMember", NAPI_AUTO_LENGTH, js_gzip_member, NULL, &fn);
  napi_set_named_property(env, exports, "gzipMember", fn);
  napi_create_function(env, "inflateRaw", NAPI_AUTO_LENGTH, js_inflate_raw, NULL, &fn);
  napi_set_named_property(env, exports, "inflateRaw", fn);
  return exports;
}
