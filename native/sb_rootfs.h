/* Builds the container rootfs inside the (already private) new mount namespace: overlay,
 * /proc, /dev, /sys, the caller's mounts, then pivot_root. */
#ifndef SB_ROOTFS_H
#define SB_ROOTFS_H
#include "sb_fs.h"
#include "sb_spec.h"
#include <sys/sysmacros.h>

static const char *const OVL_OPTS = "index=off,redirect_dir=off,metacopy=off";

/* Every overlay here is mounted `volatile` (Linux 5.10+): an upper dir is scratch until the layer
 * diffed out of it is stored as a blob, which is fsynced. Without it, unmounting an overlay (when
 * the step's mount namespace dies) runs syncfs on the whole file system under the upper dir: 0.33 s
 * for a step that wrote 400 MB, on the step's critical path (measured: umount of such an overlay
 * 334-354 ms, volatile 56-113 ms). The step's own fsync calls (dpkg makes one per file) become
 * no-ops as well. The data reaches the disk through normal writeback, as a COPY's or a pulled
 * layer's snapshot files already do. Kernels without the option mount without it. */
static void with_volatile(int fs) {
  (void)fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
}

/* Kernels before 6.8 lack lowerdir+: mount(2) with short relative symlinks (l/0, l/1, ...) so
 * even hundreds of layers fit in the one page of mount data, like Docker's overlay2 does. */
static void mount_overlay_legacy(const struct sb_spec *s, const char *wr) {
  if (chdir(wr)) die("chdir %s: %m", wr);
  if (mkdir("l", 0700) && errno != EEXIST) die("mkdir %s/l: %m", wr);
  size_t cap = 4096, len = 0;
  char *data = malloc(cap);
  if (!data) die("out of memory");
  len += (size_t)snprintf(data, cap, "lowerdir=");
  for (size_t i = 0; i < (s->nlowers ? s->nlowers : 1); i++) {
    char link[32];
    snprintf(link, sizeof link, "l/%zu", i);
    unlink(link);
    if (symlink(s->nlowers ? s->lowers[i] : "../empty", link)) die("symlink %s: %m", link);
    len += (size_t)snprintf(data + len, cap - len, "%s%s", i ? ":" : "", link);
    if (len >= cap - 64) die("too many layers for this kernel's overlay mount options");
  }
  len += (size_t)snprintf(data + len, cap - len, ",upperdir=upper,workdir=work,%s", OVL_OPTS);
  size_t plain = len;
  len += (size_t)snprintf(data + len, cap - len, ",volatile");
  if (len >= cap) die("too many layers for this kernel's overlay mount options");
  if (mount("overlay", "merged", "overlay", MS_NODEV, data) == 0) {
    free(data);
    return;
  }
  data[plain] = 0; /* a kernel before 5.10 knows no `volatile` */
  if (errno != EINVAL || mount("overlay", "merged", "overlay", MS_NODEV, data)) die("mounting overlay: %m");
  free(data);
}

static void mount_overlay(const struct sb_spec *s, const char *wr) {
  char path[PATH_MAX + 16];
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) die("overlayfs unavailable: %m");
  int legacy = getenv("TSBUILD_SANDBOX_LEGACY_OVERLAY") != NULL;
  for (size_t i = 0; !legacy && i < (s->nlowers ? s->nlowers : 1); i++) {
    const char *lower = s->nlowers ? s->lowers[i] : "empty";
    if (s->nlowers == 0) snprintf(path, sizeof path, "%s/empty", wr);
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", s->nlowers ? lower : path, 0) == 0) continue;
    if (i == 0 && errno == EINVAL) legacy = 1;
    else die("overlay lowerdir %s: %m", lower);
  }
  if (legacy) {
    close(fs);
    mount_overlay_legacy(s, wr);
    return;
  }
  if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0)) die("overlay source: %m");
  snprintf(path, sizeof path, "%s/upper", wr);
  if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", path, 0)) die("overlay upperdir: %m");
  snprintf(path, sizeof path, "%s/work", wr);
  if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", path, 0)) die("overlay workdir: %m");
  const char *opts[] = {"index", "redirect_dir", "metacopy"};
  for (size_t i = 0; i < 3; i++)
    if (fsconfig(fs, FSCONFIG_SET_STRING, opts[i], "off", 0)) die("overlay option %s: %m", opts[i]);
  with_volatile(fs);
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0)) {
    int saved = errno;
    ssize_t n = read(fs, fs_log, sizeof fs_log - 1);
    fs_log[n > 0 ? n : 0] = 0;
    errno = saved;
    die("mounting overlay: %m %s", fs_log);
  }
  /* nodev: a device node from a layer (or one a step makes with mknod) is inert, as runc's device
   * cgroup makes it; the devices a step may open are the ones setup_dev binds into /dev. */
  int m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
  if (m < 0) die("fsmount overlay: %m");
  if (move_mount(m, "", AT_FDCWD, merged_path, MOVE_MOUNT_F_EMPTY_PATH)) die("attaching overlay: %m");
  close(m);
  close(fs);
}

/* Docker's masked and read-only /proc and /sys paths: host kernel knobs stay out of reach. */
static void mask_paths(int rootfd) {
  static const char *const masked[] = {"proc/asound", "proc/acpi", "proc/kcore", "proc/keys",
                                       "proc/latency_stats", "proc/timer_list", "proc/timer_stats",
                                       "proc/sched_debug", "proc/scsi", "sys/firmware",
                                       "sys/devices/virtual/powercap", NULL};
  static const char *const ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger", NULL};
  for (size_t i = 0; masked[i]; i++) {
    int t = openat2_fd(rootfd, masked[i], O_PATH | O_CLOEXEC, IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (t < 0) continue;
    struct stat st;
    int m = -1;
    if (fstat(t, &st) == 0) {
      const char *const opts[] = {"size=0", NULL};
      m = S_ISDIR(st.st_mode) ? fs_new("tmpfs", opts, MOUNT_ATTR_RDONLY) : bind_tree(AT_FDCWD, "/dev/null");
    }
    if (m < 0 || move_mount(m, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
      die("masking /%s: %m", masked[i]);
    close(m);
    close(t);
  }
  for (size_t i = 0; ro[i]; i++) {
    int t = openat2_fd(rootfd, ro[i], O_PATH | O_CLOEXEC, IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (t < 0) continue;
    int m = bind_tree(t, "");
    if (m < 0) die("read-only /%s: %m", ro[i]);
    set_attr(m, MOUNT_ATTR_RDONLY, ro[i]);
    if (move_mount(m, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) die("read-only /%s: %m", ro[i]);
    close(m);
    close(t);
  }
}

static void setup_dev(int rootfd) {
  const char *const dev_opts[] = {"mode=755", "size=65536k", NULL};
  /* nodev like the rootfs: a node a step makes here opens nothing. The standard devices are the
   * host's own nodes bound in one by one, so exactly these six open (docker's default allow-list
   * does the same with a device cgroup, which cgroup v2 would need a BPF program for). */
  int m = fs_new("tmpfs", dev_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME);
  if (m < 0) die("mounting /dev: %m %s", fs_log);
  attach(m, rootfd, "dev", 1, 1);
  int dev = openat2_fd(rootfd, "dev", O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
  if (dev < 0) die("/dev: %m");
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    char host[32], inside[32];
    snprintf(host, sizeof host, "/dev/%s", nodes[i]);
    snprintf(inside, sizeof inside, "dev/%s", nodes[i]);
    struct stat st;
    if (stat(host, &st) || !S_ISCHR(st.st_mode)) die("host %s is not a character device", host);
    int n = bind_tree(AT_FDCWD, host);
    if (n < 0) die("binding %s: %m", host);
    attach(n, rootfd, inside, 0, 0);
  }
  mode_t old = umask(0);
  if (mkdirat(dev, "pts", 0755) || mkdirat(dev, "shm", 01777) || mkdirat(dev, "mqueue", 01777))
    die("/dev dirs: %m");
  umask(old);
  static const char *const links[][2] = {{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                                         {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                                         {"/proc/kcore", "core"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][0], dev, links[i][1])) die("symlink /dev/%s: %m", links[i][1]);
  const char *const pts_opts[] = {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL};
  if ((m = fs_new("devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)) < 0) die("mounting /dev/pts: %m %s", fs_log);
  attach(m, rootfd, "dev/pts", 1, 0);
  const char *const shm_opts[] = {"mode=1777", "size=65536k", NULL};
  if ((m = fs_new("tmpfs", shm_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0)
    die("mounting /dev/shm: %m %s", fs_log);
  attach(m, rootfd, "dev/shm", 1, 0);
  if ((m = fs_new("mqueue", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) >= 0)
    attach(m, rootfd, "dev/mqueue", 1, 0);
  close(dev);
}

/* BuildKit's `--mount=type=bind,rw`, and a stage's rootfs for `bind,from=`: the step may write,
 * the sources never change. An overlay with the sources as lower dirs and upper/work in workRoot
 * (cow/<i>/). Lower dirs are named by short numbered symlinks there, relative to it, so no source
 * path character (':' ',') can confuse the options and the list fits fsconfig's 256-byte value
 * on any kernel (~60 dirs); longer lists go through lowerdir+ (Linux 6.8), one path per call. */
static int mount_cow(const char *wr, size_t i, const struct sb_mount *mt) {
  char dir[64], opt[256];
  snprintf(dir, sizeof dir, "cow/%zu", i);
  if (chdir(wr)) die("chdir %s: %m", wr);
  if ((mkdir("cow", 0700) && errno != EEXIST) || mkdir(dir, 0700) || chdir(dir)) die("mkdir %s/%s: %m", wr, dir);
  if (mkdir("u", 0755) || mkdir("w", 0755)) die("mkdir %s/%s/{u,w}: %m", wr, dir);
  size_t len = 0;
  for (size_t k = 0; k < mt->nsrcs && len < sizeof opt; k++) {
    char link[24];
    snprintf(link, sizeof link, "%zu", k);
    if (symlink(mt->srcs[k], link)) die("symlink %s/%s/%s: %m", wr, dir, link);
    len += (size_t)snprintf(opt + len, sizeof opt - len, "%s%s", k ? ":" : "", link);
  }
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) die("overlayfs unavailable: %m");
  if (len < sizeof opt) {
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", opt, 0)) die("bind %s: overlay lowerdir: %m", mt->tgt);
  } else {
    for (size_t k = 0; k < mt->nsrcs; k++)
      if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", mt->srcs[k], 0))
        die("bind %s: overlay lowerdir+ %s: %m (this many lower dirs need Linux 6.8 or later)", mt->tgt, mt->srcs[k]);
  }
  if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", "u", 0) || fsconfig(fs, FSCONFIG_SET_STRING, "workdir", "w", 0))
    die("bind %s: overlay upper/work dir: %m", mt->tgt);
  with_volatile(fs); /* its writes are discarded: never worth a sync */
  if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "overlay", 0) || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
    die("bind %s: %m", mt->tgt);
  int m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (mt->ro ? MOUNT_ATTR_RDONLY : 0));
  if (m < 0) die("bind %s: fsmount: %m", mt->tgt);
  close(fs);
  return m;
}

static void setup_mounts(const struct sb_spec *s, const char *wr, int rootfd) {
  int m = fs_new("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (m < 0) die("mounting /proc: %m %s", fs_log);
  attach(m, rootfd, "proc", 1, 1);
  setup_dev(rootfd);
  unsigned sys_attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  m = fs_new("sysfs", NULL, sys_attrs);
  if (m < 0) { /* e.g. a netns we may not mount sysfs for: fall back to the host's, read-only */
    if ((m = bind_tree(AT_FDCWD, "/sys")) < 0) die("mounting /sys: %m");
    set_attr(m, sys_attrs, "/sys");
  }
  attach(m, rootfd, "sys", 1, 1);
  mask_paths(rootfd);
  for (size_t i = 0; i < s->nmounts; i++) {
    const struct sb_mount *mt = &s->mounts[i];
    int is_dir = 1;
    if (mt->type == M_BIND) {
      struct stat st;
      if (stat(mt->src, &st)) die("bind source %s: %m", mt->src);
      is_dir = S_ISDIR(st.st_mode);
      if ((m = bind_tree(AT_FDCWD, mt->src)) < 0) die("bind %s: %m", mt->src);
      /* nodev: a cache mount outlives the step; a node made in it must stay as inert as in the rootfs. */
      set_attr(m, MOUNT_ATTR_NODEV | (mt->ro ? MOUNT_ATTR_RDONLY : 0), mt->tgt);
    } else if (mt->type == M_COW) {
      for (size_t k = 0; k < mt->nsrcs; k++) {
        struct stat st;
        if (stat(mt->srcs[k], &st)) die("bind source %s: %m", mt->srcs[k]);
        if (!S_ISDIR(st.st_mode)) die("bind source %s: not a directory", mt->srcs[k]);
      }
      m = mount_cow(wr, i, mt);
    } else {
      char size[48];
      snprintf(size, sizeof size, "size=%llu", mt->size);
      const char *const opts[] = {"mode=1777", mt->size ? size : NULL, NULL};
      if ((m = fs_new("tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) < 0) die("tmpfs %s: %m %s", mt->tgt, fs_log);
    }
    attach(m, rootfd, mt->tgt, is_dir, 1);
  }
}

static void pivot_into(int rootfd) {
  if (fchdir(rootfd)) die("chdir rootfs: %m");
  if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root: %m");
  if (umount2(".", MNT_DETACH)) die("detaching old root: %m");
  if (chdir("/")) die("chdir /: %m");
}

#endif
