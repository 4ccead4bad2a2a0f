/* After the run: remove the mountpoint stubs the child created (recorded as
 * "<atime s> <ns> <mtime s> <ns> <relpath>\0") from the upper dir, newest first, and restore the
 * parent dir's times so a layer diff does not see the parent as changed. Only empty files and
 * empty dirs are removed, and no symlink in the upper dir is ever followed. */
#ifndef SB_STUBS_H
#define SB_STUBS_H
#include "sb_common.h"

static void remove_stubs(const char *upper, char *buf, size_t len) {
  int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (ufd < 0) return;
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] == 0) n++;
  char **recs = calloc(n + 1, sizeof *recs);
  if (!recs) return;
  n = 0;
  for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
    if (memchr(buf + i, 0, len - i)) recs[n++] = buf + i;
  while (n-- > 0) {
    long long as, ms;
    long ans, mns;
    int off = 0;
    if (sscanf(recs[n], "%lld %ld %lld %ld %n", &as, &ans, &ms, &mns, &off) != 4 || !off) continue;
    char *rel = recs[n] + off, *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel;
    if (slash) *slash = 0;
    int pfd = openat2_fd(ufd, slash ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    if (pfd < 0) continue;
    struct stat st;
    int removed = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISREG(st.st_mode) && st.st_size == 0) removed = unlinkat(pfd, name, 0) == 0;
      else if (S_ISDIR(st.st_mode)) removed = unlinkat(pfd, name, AT_REMOVEDIR) == 0;
    }
    if (removed) {
      struct timespec ts[2] = {{.tv_sec = (time_t)as, .tv_nsec = ans}, {.tv_sec = (time_t)ms, .tv_nsec = mns}};
      futimens(pfd, ts);
    }
    close(pfd);
  }
  free(recs);
  close(ufd);
}

#endif
