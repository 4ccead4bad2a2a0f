/* Dockerfile USER resolution, read from the container's /etc/passwd and /etc/group after
 * pivot_root (so no symlink can point at a host file). Mirrors runc's GetExecUser, including its
 * error messages and the 0..2^31-1 id range check (CVE-2024-40635). */
#ifndef SB_USER_H
#define SB_USER_H
#include "sb_fs.h"

struct exec_user {
  uid_t uid;
  gid_t gid;
  gid_t sgids[256];
  size_t nsgids;
  char home[PATH_MAX];
};

#define MAX_ID 2147483647LL

/* 1 = numeric id (in *out), 0 = a name, dies on an out-of-range number. */
static int parse_id(const char *s, long long *out) {
  const char *d = s[0] == '-' ? s + 1 : s;
  if (!*d || strspn(d, "0123456789") != strlen(d)) return 0;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno || v < 0 || v > MAX_ID) die("uids and gids must be in range 0-%lld", MAX_ID);
  *out = v;
  return 1;
}

/* The whole file, or NULL when it is missing or not a regular file (never a fifo or device). */
static char *read_etc(const char *rel) {
  int fd = openat2_fd(AT_FDCWD, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, IN_ROOT);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
    close(fd);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t len = 0;
  while (buf && len < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (buf) buf[len] = 0;
  return buf;
}

/* Splits one line of a colon file into at most max fields; returns the field count. */
static size_t split_fields(char *line, char **f, size_t max) {
  size_t n = 0;
  f[n++] = line;
  for (char *p = line; *p && n < max; p++)
    if (*p == ':') {
      *p = 0;
      f[n++] = p + 1;
    }
  return n;
}

static int member_of(char *list, const char *name) {
  for (char *save = NULL, *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save))
    if (!strcmp(u, name)) return 1;
  return 0;
}

static void resolve_user(const char *spec, struct exec_user *eu) {
  char user[256], group[256] = "";
  const char *colon = strchr(spec, ':');
  snprintf(user, sizeof user, "%.*s", (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
  if (colon) snprintf(group, sizeof group, "%s", colon + 1);
  if (!user[0]) snprintf(user, sizeof user, "0");
  long long uid_arg = -1, gid_arg = -1;
  int user_num = parse_id(user, &uid_arg);
  int group_num = group[0] && parse_id(group, &gid_arg);
  memset(eu, 0, sizeof *eu);
  snprintf(eu->home, sizeof eu->home, "/");
  char matched[256] = "";
  int found = 0;
  char *pw = read_etc("/etc/passwd");
  for (char *save = NULL, *line = pw ? strtok_r(pw, "\n", &save) : NULL; line && !found;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[7];
    if (split_fields(line, f, 7) < 7) continue;
    long long id;
    int match = !strcmp(f[0], user) || (user_num && parse_id(f[2], &id) && id == uid_arg);
    if (!match || !parse_id(f[2], &id)) continue;
    eu->uid = (uid_t)id;
    eu->gid = parse_id(f[3], &id) ? (gid_t)id : 0;
    snprintf(eu->home, sizeof eu->home, "%s", f[5]);
    snprintf(matched, sizeof matched, "%s", f[0]);
    found = 1;
  }
  free(pw);
  if (!found) {
    if (!user_num) die("unable to find user %s: no matching entries in passwd file", user);
    eu->uid = (uid_t)uid_arg;
  }
  char *gr = read_etc("/etc/group");
  int group_found = 0;
  for (char *save = NULL, *line = gr ? strtok_r(gr, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
    char *f[4];
    long long id;
    if (split_fields(line, f, 4) < 4 || !parse_id(f[2], &id)) continue;
    if (group[0]) {
      if (group_found || !(!strcmp(f[0], group) || (group_num && id == gid_arg))) continue;
      eu->gid = (gid_t)id;
      group_found = 1;
    } else if (matched[0] && member_of(f[3], matched) && eu->nsgids < 256) {
      eu->sgids[eu->nsgids++] = (gid_t)id; /* supplementary groups only in the implicit form */
    }
  }
  free(gr);
  if (group[0] && !group_found) {
    if (!group_num) die("unable to find group %s: no matching entries in group file", group);
    eu->gid = (gid_t)gid_arg;
  }
}

#endif
