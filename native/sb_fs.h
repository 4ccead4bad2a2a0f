/* Path resolution inside the rootfs and the mount helpers (new mount API: fsopen/fsmount/
 * open_tree/move_mount). Every target is resolved with openat2(RESOLVE_IN_ROOT), so a symlink in
 * an image can never make a mount land outside the rootfs (CVE-2024-1753 class). */
#ifndef SB_FS_H
#define SB_FS_H
#include "sb_common.h"
#include <sys/mount.h>

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Stubs this process creates inside the overlay are sent to the launcher on stub_fd so it can
 * remove them from the upper dir after the run (see sb_stubs.h). Records, NUL-terminated:
 * "<kind> <parent atime s> <ns> <parent mtime s> <ns> <mark mtime s> <ns> <mode> <uid> <gid>
 * <relpath>", kind S = a stub we created (mark: its parent's mtime right after), C = a lower dir
 * our stub made overlayfs copy up into the upper dir (mark: that dir's own mtime). */
static int stub_fd = -1, upper_fd = -1;
static dev_t overlay_dev;
static char merged_path[PATH_MAX + 16];

static void emit_stub(char kind, const struct stat *parent, const struct timespec *mark, const struct stat *self,
                      const char *rel) {
  char rec[PATH_MAX + 200];
  int len = snprintf(rec, sizeof rec, "%c %lld %ld %lld %ld %lld %ld %o %u %u %s", kind, (long long)parent->st_atim.tv_sec,
                     parent->st_atim.tv_nsec, (long long)parent->st_mtim.tv_sec, parent->st_mtim.tv_nsec,
                     (long long)mark->tv_sec, mark->tv_nsec, (unsigned)self->st_mode, (unsigned)self->st_uid,
                     (unsigned)self->st_gid, rel);
  if (len < (int)sizeof rec) write_all(stub_fd, rec, (size_t)len + 1);
}

/* The path of fd relative to the overlay root, or -1 when fd is not inside the overlay itself. */
static int overlay_rel(int fd, char *rel, size_t cap) {
  char link[64], where[PATH_MAX];
  struct stat st;
  if (fstat(fd, &st) || st.st_dev != overlay_dev) return -1;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, where, sizeof where - 1);
  if (n < 0) return -1;
  where[n] = 0;
  size_t ml = strlen(merged_path);
  if (strncmp(where, merged_path, ml) != 0 || (where[ml] != 0 && where[ml] != '/')) return -1;
  const char *r = where + ml;
  while (*r == '/') r++;
  snprintf(rel, cap, "%s", r);
  return 0;
}

/* Before creating an entry in dir `rel`: every ancestor that exists only in a lower layer is
 * about to be copied up; record it so the launcher can drop it again if it stays unchanged. */
static void note_copyups(const char *rel) {
  char prefix[PATH_MAX], path[PATH_MAX + 32];
  struct stat up, self, parent;
  for (size_t i = 0; rel[0]; i++) {
    if (rel[i] != '/' && rel[i] != 0) continue;
    snprintf(prefix, sizeof prefix, "%.*s", (int)i, rel);
    if (fstatat(upper_fd, prefix, &up, AT_SYMLINK_NOFOLLOW) != 0) {
      snprintf(path, sizeof path, "%s/%s", merged_path, prefix);
      if (lstat(path, &self)) return;
      *strrchr(path, '/') = 0;
      if (lstat(path, &parent)) return;
      emit_stub('C', &parent, &self.st_mtim, &self, prefix);
    }
    if (!rel[i]) break;
  }
}

/* mkdir -p (or create an empty file for the last component) inside rootfd; returns an O_PATH fd.
 * A dangling symlink on the way is followed (within the root) and its target created. */
static int ensure_path_at(int rootfd, const char *path, int want_dir, int record, int depth) {
  char prefix[PATH_MAX] = ".";
  size_t plen = 1;
  const char *p = path;
  int fd = -1;
  for (;;) {
    while (*p == '/') p++;
    if (!*p) break;
    size_t clen = strcspn(p, "/");
    const char *comp = p;
    p += clen;
    const char *rest = p;
    while (*rest == '/') rest++;
    int last = *rest == 0;
    if (plen + 1 + clen >= sizeof prefix) {
      errno = ENAMETOOLONG;
      return -1;
    }
    size_t parent_len = plen;
    prefix[plen++] = '/';
    memcpy(prefix + plen, comp, clen);
    plen += clen;
    prefix[plen] = 0;
    if (fd >= 0) close(fd);
    fd = openat2_fd(rootfd, prefix, O_PATH | O_CLOEXEC, IN_ROOT);
    if (fd >= 0 || errno != ENOENT) {
      if (fd < 0) return -1;
      continue;
    }
    char name[NAME_MAX + 1];
    if (clen > NAME_MAX) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(name, comp, clen);
    name[clen] = 0;
    prefix[parent_len] = 0;
    int pfd = openat2_fd(rootfd, prefix, O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
    prefix[parent_len] = '/';
    if (pfd < 0) return -1;
    struct stat pst;
    char rel[PATH_MAX];
    int tracked = record && stub_fd >= 0 && overlay_rel(pfd, rel, sizeof rel) == 0;
    if (tracked) note_copyups(rel);
    int rc = fstat(pfd, &pst);
    if (rc == 0 && (!last || want_dir)) rc = mkdirat(pfd, name, 0755);
    else if (rc == 0) {
      int f = openat(pfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      rc = f < 0 ? -1 : close(f);
    }
    struct stat after;
    if (rc == 0 && tracked && fstat(pfd, &after) == 0) {
      char full[PATH_MAX + NAME_MAX + 2];
      snprintf(full, sizeof full, "%s%s%s", rel, *rel ? "/" : "", name);
      emit_stub('S', &pst, &after.st_mtim, &pst, full);
    }
    int saved = errno;
    char target[PATH_MAX];
    ssize_t tl = rc < 0 && saved == EEXIST ? readlinkat(pfd, name, target, sizeof target - 1) : -1;
    close(pfd);
    if (tl >= 0 && depth < 40) {
      char next[2 * PATH_MAX + 8];
      target[tl] = 0;
      prefix[parent_len] = 0;
      snprintf(next, sizeof next, "%s/%s/%s", target[0] == '/' ? "" : prefix, target, rest);
      if (fd >= 0) close(fd);
      return ensure_path_at(rootfd, next, want_dir, record, depth + 1);
    }
    errno = tl >= 0 ? ELOOP : saved;
    if (rc < 0) return -1;
    fd = openat2_fd(rootfd, prefix, O_PATH | O_CLOEXEC, IN_ROOT);
    if (fd < 0) return -1;
  }
  if (fd < 0) fd = openat2_fd(rootfd, ".", O_PATH | O_CLOEXEC, IN_ROOT);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && want_dir != !!S_ISDIR(st.st_mode)) {
    close(fd);
    errno = want_dir ? ENOTDIR : EISDIR;
    return -1;
  }
  return fd;
}

static int ensure_path(int rootfd, const char *path, int want_dir, int record) {
  return ensure_path_at(rootfd, path, want_dir, record, 0);
}

static char fs_log[512];

/* A detached mount of a new filesystem; opts are "key=value" or "flag". fs_log gets the
 * kernel's explanation on failure. */
static int fs_new(const char *type, const char *const *opts, unsigned attrs) {
  fs_log[0] = 0;
  int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  int rc = fsconfig(fs, FSCONFIG_SET_STRING, "source", type, 0);
  for (size_t i = 0; rc == 0 && opts && opts[i]; i++) {
    char key[64];
    const char *eq = strchr(opts[i], '=');
    size_t kl = eq ? (size_t)(eq - opts[i]) : strlen(opts[i]);
    snprintf(key, sizeof key, "%.*s", (int)kl, opts[i]);
    rc = eq ? fsconfig(fs, FSCONFIG_SET_STRING, key, eq + 1, 0) : fsconfig(fs, FSCONFIG_SET_FLAG, key, NULL, 0);
  }
  if (rc == 0) rc = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
  int m = rc == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, attrs) : -1;
  int saved = errno;
  if (m < 0) {
    ssize_t n = read(fs, fs_log, sizeof fs_log - 1);
    fs_log[n > 0 ? n - (fs_log[n - 1] == '\n') : 0] = 0;
  }
  close(fs);
  errno = saved;
  return m;
}

static void set_attr(int mfd, uint64_t attrs, const char *what) {
  struct mount_attr a = {.attr_set = attrs};
  if (mount_setattr(mfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a)) die("%s: mount_setattr: %m", what);
}

/* Attaches a detached mount at path inside rootfd (creating the mountpoint if missing). */
static void attach(int mfd, int rootfd, const char *path, int want_dir, int record) {
  int tfd = ensure_path(rootfd, path, want_dir, record);
  if (tfd < 0) die("mount target %s: %m", path);
  if (move_mount(mfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
    die("mounting on %s: %m", path);
  close(tfd);
  close(mfd);
}

static int bind_tree(int dirfd, const char *path) {
  return open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | (*path ? 0 : AT_EMPTY_PATH));
}

#endif
