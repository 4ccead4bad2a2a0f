/* The spec arrives on fd 3 as NUL-terminated tokens: a key followed by a fixed number of values
 * (see KEYS below). No JSON parser in C: the format cannot be ambiguous and needs no escaping. */
#ifndef SB_SPEC_H
#define SB_SPEC_H
#include "sb_common.h"

enum { M_BIND, M_TMPFS, M_COW };

struct sb_mount {
  int type;
  const char *src, *tgt;
  const char **srcs; /* M_COW: the overlay's lower dirs, top-most first (srcs[0] == src) */
  size_t nsrcs;
  int ro;
  unsigned long long size;
};

struct sb_spec {
  const char *workroot, *cwd, *user, *hostname;
  const char **lowers, **args, **env;
  size_t nlowers, nargs, nenv, nmounts;
  struct sb_mount *mounts;
  int net_none;
  long long memory, pids, cpu_quota; /* -1: unset; cpu_quota in us per 100ms period */
  pid_t ppid;                        /* the node process; we exit if it is already gone */
};

static long long parse_ll(const char *key, const char *v) {
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end || end == v || n < 0) die("spec: bad number for %s: %s", key, v);
  return n;
}

/* The spec is "<byte count>\0" then that many bytes of NUL-terminated tokens. Read to the count, not
 * to EOF: node closes its end of the pipe only when its event loop gets to it, which was 12 ms after
 * the data arrived while the build went on with synchronous work (strace of a RUN step). */
static void read_spec(struct sb_spec *s) {
  size_t cap = 1 << 16, len = 0, want = 0, head = 0;
  char *buf = malloc(cap);
  if (!buf) die("out of memory");
  for (;;) {
    if (head == 0) {
      char *nul = memchr(buf, 0, len < 24 ? len : 24);
      if (nul) {
        char *end = NULL;
        unsigned long long n = strtoull(buf, &end, 10);
        if (end != nul || end == buf || n > (64u << 20)) die("spec: bad length");
        head = (size_t)(nul - buf) + 1;
        want = head + (size_t)n;
      } else if (len >= 24) {
        die("spec: bad length");
      }
    }
    if (head != 0 && len >= want) break;
    if (len == cap) {
      if (cap >= (64u << 20)) die("spec too large");
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf) die("out of memory");
    }
    ssize_t r = read(SPEC_FD, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("reading spec: %m");
    if (r == 0) die("spec: truncated");
    len += (size_t)r;
  }
  close(SPEC_FD);
  if (len > want) die("spec: longer than its length");
  memmove(buf, buf + head, want - head);
  len = want - head;
  if (len == 0 || buf[len - 1] != 0) die("spec: truncated");
  size_t ntok = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] == 0) ntok++;
  const char **tok = calloc(ntok, sizeof *tok);
  s->lowers = calloc(ntok, sizeof *s->lowers);
  s->args = calloc(ntok + 1, sizeof *s->args);
  s->env = calloc(ntok + 2, sizeof *s->env); /* room for HOME and the NULL */
  s->mounts = calloc(ntok, sizeof *s->mounts);
  if (!tok || !s->lowers || !s->args || !s->env || !s->mounts) die("out of memory");
  for (size_t i = 0, t = 0; i < len; t++) {
    tok[t] = buf + i;
    i += strlen(buf + i) + 1;
  }
  s->memory = s->pids = s->cpu_quota = -1;
  s->cwd = "/";
  s->user = "";
  s->hostname = "";
  for (size_t t = 0; t < ntok;) {
    const char *k = tok[t++];
#define NEED(n) \
  if (t + (n) > ntok) die("spec: missing value for %s", k)
    NEED(1);
    if (!strcmp(k, "workroot")) s->workroot = tok[t++];
    else if (!strcmp(k, "lower")) s->lowers[s->nlowers++] = tok[t++];
    else if (!strcmp(k, "arg")) s->args[s->nargs++] = tok[t++];
    else if (!strcmp(k, "env")) s->env[s->nenv++] = tok[t++];
    else if (!strcmp(k, "cwd")) s->cwd = tok[t++];
    else if (!strcmp(k, "user")) s->user = tok[t++];
    else if (!strcmp(k, "hostname")) s->hostname = tok[t++];
    else if (!strcmp(k, "network")) s->net_none = !strcmp(tok[t++], "none");
    else if (!strcmp(k, "memory")) s->memory = parse_ll(k, tok[t++]);
    else if (!strcmp(k, "pids")) s->pids = parse_ll(k, tok[t++]);
    else if (!strcmp(k, "cpuquota")) s->cpu_quota = parse_ll(k, tok[t++]);
    else if (!strcmp(k, "ppid")) s->ppid = (pid_t)parse_ll(k, tok[t++]);
    else if (!strcmp(k, "bind")) {
      NEED(3);
      struct sb_mount *m = &s->mounts[s->nmounts++];
      m->type = M_BIND;
      m->src = tok[t++];
      m->tgt = tok[t++];
      m->ro = !strcmp(tok[t++], "1");
    } else if (!strcmp(k, "cow")) { /* a writable overlay over src whose writes are discarded */
      NEED(2);
      struct sb_mount *m = &s->mounts[s->nmounts++];
      m->type = M_COW;
      m->src = tok[t++];
      m->tgt = tok[t++];
      m->srcs = &m->src;
      m->nsrcs = 1;
    } else if (!strcmp(k, "layers")) { /* a stage's rootfs (or a dir in it): `layers <ro> <tgt> <n> <lower>...` */
      NEED(3);
      struct sb_mount *m = &s->mounts[s->nmounts++];
      m->type = M_COW;
      m->ro = !strcmp(tok[t++], "1");
      m->tgt = tok[t++];
      m->nsrcs = (size_t)parse_ll(k, tok[t++]);
      if (m->nsrcs == 0) die("spec: layers mount %s without lower dirs", m->tgt);
      NEED(m->nsrcs);
      m->srcs = &tok[t];
      m->src = tok[t];
      t += m->nsrcs;
    } else if (!strcmp(k, "tmpfs")) {
      NEED(2);
      struct sb_mount *m = &s->mounts[s->nmounts++];
      m->type = M_TMPFS;
      m->tgt = tok[t++];
      m->size = (unsigned long long)parse_ll(k, tok[t++]);
    } else die("spec: unknown key %s", k);
#undef NEED
  }
  if (!s->workroot || s->workroot[0] != '/') die("spec: workroot must be an absolute path");
  if (s->nargs == 0) die("spec: no command to run");
}

#endif
