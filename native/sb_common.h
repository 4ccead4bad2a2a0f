/* Shared helpers for the sandbox launcher: error reporting on the status fd, small I/O utils.
 * The launcher is one binary (build-native.mjs compiles each each native C file alone), so the parts
 * live in headers with static functions, each included exactly once from sandbox.c. */
#ifndef SB_COMMON_H
#define SB_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* fd 4 carries "E <message>\n" (setup failures) and "X <exit> <signal> <oom>\n" to node. */
#define STATUS_FD 4
#define SPEC_FD 3

static void status_line(const char *kind, const char *fmt, va_list ap) {
  int saved = errno; /* for %m: snprintf must not clobber it */
  char buf[4096];
  int n = snprintf(buf, sizeof buf, "%s ", kind);
  errno = saved;
  n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  for (int i = 0; i < n; i++)
    if (buf[i] == '\n') buf[i] = ' ';
  buf[n++] = '\n';
  ssize_t w = write(STATUS_FD, buf, (size_t)n);
  (void)w;
}

/* Undoes the launcher's half-done work (child, cgroups) when it has to give up. */
static void (*die_hook)(void);

/* %m in fmt expands to strerror(errno) (glibc). */
__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  status_line("E", fmt, ap);
  va_end(ap);
  if (die_hook) die_hook();
  _exit(1);
}

static int openat2_fd(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Writes a small string to a (cgroup/proc) file; returns -1 with errno set on failure. */
static int write_file(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = write_all(fd, value, strlen(value));
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* Reads up to cap-1 bytes of a file into buf (NUL-terminated); returns length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  return (ssize_t)len;
}

/* Field 22 of /proc/<pid>/stat: lets a pid be told apart from a later reuse of the number. */
static unsigned long long proc_starttime(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf) <= 0) return 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  int field = 2;
  for (; *p && field < 22; p++)
    if (*p == ' ') field++;
  return strtoull(p, NULL, 10);
}

#endif
