/* After the run: undo the mountpoint stubs the child recorded (sb_fs.h), newest first. S: our
 * stub, removed if still an empty file or empty dir. C: a dir our stub made overlayfs copy up,
 * removed if now empty, not opaque and with unchanged mode and owner. Either way the parent's
 * times are restored, so a layer diff sees nothing. No symlink in the upper dir is followed. */
#ifndef SB_STUBS_H
#define SB_STUBS_H
#include "sb_common.h"
#include <sys/xattr.h>

/* 0: keep, 1: unlink a file, 2: remove a dir. */
static int removable(int pfd, const char *name, char kind, unsigned mode, unsigned uid, unsigned gid) {
  struct stat st;
  if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW)) return 0;
  if (kind == 'S') return S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) && st.st_size == 0;
  if (!S_ISDIR(st.st_mode) || st.st_mode != mode || st.st_uid != uid || st.st_gid != gid) return 0;
  int d = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0) return 0;
  char v[8];
  int opaque = fgetxattr(d, "trusted.overlay.opaque", v, sizeof v) >= 0;
  close(d);
  return opaque ? 0 : 2;
}

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
    unsigned mode, uid, gid;
    char kind;
    int off = 0;
    if (sscanf(recs[n], "%c %lld %ld %lld %ld %o %u %u %n", &kind, &as, &ans, &ms, &mns, &mode, &uid, &gid, &off) != 8 ||
        !off)
      continue;
    char *rel = recs[n] + off, *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel;
    if (slash) *slash = 0;
    int pfd = openat2_fd(ufd, slash ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    if (pfd < 0) continue;
    int what = removable(pfd, name, kind, mode, uid, gid);
    if (what && unlinkat(pfd, name, what == 2 ? AT_REMOVEDIR : 0) == 0) {
      struct timespec ts[2] = {{.tv_sec = (time_t)as, .tv_nsec = ans}, {.tv_sec = (time_t)ms, .tv_nsec = mns}};
      futimens(pfd, ts);
    }
    close(pfd);
  }
  free(recs);
  close(ufd);
}

#endif
