/* After the run: undo the mountpoint stubs the child recorded (sb_fs.h), newest first. S: our
 * stub, removed if still an empty file or empty dir. C: a dir our stub made overlayfs copy up,
 * removed if now empty, not opaque and with unchanged mode, owner and mtime. The parent's times
 * go back to what they were before the stub when nothing else changed that dir since (so a layer
 * diff sees nothing); otherwise they stay as the step left them, as BuildKit's stub cleaner does
 * (a RUN useradd adding to /etc keeps /etc's new mtime). No symlink in the upper dir is followed. */
#ifndef SB_STUBS_H
#define SB_STUBS_H
#include "sb_common.h"
#include <sys/xattr.h>

static int same_time(struct timespec a, struct timespec b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* 0: keep, 1: unlink a file, 2: remove a dir. */
static int removable(int pfd, const char *name, char kind, struct timespec mark, unsigned mode, unsigned uid,
                     unsigned gid) {
  struct stat st;
  if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW)) return 0;
  if (kind == 'S') return S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) && st.st_size == 0;
  if (!S_ISDIR(st.st_mode) || st.st_mode != mode || st.st_uid != uid || st.st_gid != gid || !same_time(st.st_mtim, mark))
    return 0;
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
    long long as, ms, ks;
    long ans, mns, kns;
    unsigned mode, uid, gid;
    char kind;
    int off = 0;
    if (sscanf(recs[n], "%c %lld %ld %lld %ld %lld %ld %o %u %u %n", &kind, &as, &ans, &ms, &mns, &ks, &kns, &mode, &uid,
               &gid, &off) != 10 ||
        !off)
      continue;
    struct timespec mark = {.tv_sec = (time_t)ks, .tv_nsec = kns};
    char *rel = recs[n] + off, *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel;
    if (slash) *slash = 0;
    int pfd = openat2_fd(ufd, slash ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
    if (pfd < 0) continue;
    int what = removable(pfd, name, kind, mark, mode, uid, gid);
    struct stat now;
    if (what && fstat(pfd, &now) == 0 && unlinkat(pfd, name, what == 2 ? AT_REMOVEDIR : 0) == 0) {
      /* Untouched since: an S parent still has the mtime our stub gave it; a C dir's parent is
       * never changed by the copy-up itself (overlayfs restores it), so it still has the old one. */
      struct timespec before[2] = {{.tv_sec = (time_t)as, .tv_nsec = ans}, {.tv_sec = (time_t)ms, .tv_nsec = mns}};
      int untouched = same_time(now.st_mtim, kind == 'S' ? mark : before[1]);
      struct timespec kept[2] = {now.st_atim, now.st_mtim};
      futimens(pfd, untouched ? before : kept);
    }
    close(pfd);
  }
  free(recs);
  close(ufd);
}

#endif
