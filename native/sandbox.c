/* tsbuild RUN sandbox launcher (a tiny container runtime, like runc's nsexec).
 *
 * node --spawn--> launcher (host namespaces; owns cgroups, stub cleanup, exit status)
 *                   --fork after unshare(CLONE_NEWPID)--> child = pid 1 of the step
 *                     unshare(mnt, uts, ipc[, net]) -> overlay, /proc /dev /sys, mounts
 *                     -> pivot_root -> user, cwd, caps, no_new_privs -> exec the command
 *
 * fd 3: spec in (see sb_spec.h). fd 4: status out ("E msg" / "A signal" / "X exit signal oom").
 * Every mount lives only in the child's mount namespace, so it vanishes with the step's
 * processes; when pid 1 exits the kernel kills the rest of the pid namespace. The launcher dies
 * with node (PDEATHSIG SIGTERM -> it kills the child and cleans up), the child with the launcher
 * (PDEATHSIG SIGKILL).
 *
 * Tearing the mount namespace down is slow: the overlay's unmount frees one dentry per path the
 * step touched (~100 ms for a step that wrote 2,000 files; the kernel does it inside the last
 * process's exit, before its parent hears of it). So the launcher holds the namespace open
 * (/proc/<child>/ns/mnt, opened when the child says it has unshared) and lets it go only after
 * it has written the step's status and closed its output: node commits the upper dir while the
 * kernel unmounts on the other core, and waits for the launcher's exit only before it removes
 * the work root. Nothing is running in the namespace by then (the pid namespace died with pid 1),
 * and if the launcher dies the kernel drops the namespace with it. */
#include "sb_common.h"
#include "sb_spec.h"
#include "sb_fs.h"
#include "sb_rootfs.h"
#include "sb_user.h"
#include "sb_caps.h"
#include "sb_cgroup.h"
#include "sb_stubs.h"
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

static volatile sig_atomic_t child_pid = 0, aborted = 0;

static void on_term(int sig) {
  aborted = sig; /* reported as "A <sig>": the step was stopped, it did not fail */
  if (child_pid > 0) kill(child_pid, SIGKILL);
}

static void on_chld(int sig) { (void)sig; }

static void close_fds_except(int *keep, size_t n) {
  for (size_t i = 1; i < n; i++) /* insertion sort: close_range needs ascending gaps */
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = 0;
  for (size_t i = 0; i < n; i++) {
    if ((unsigned)keep[i] > lo) close_range(lo, (unsigned)keep[i] - 1, 0);
    lo = (unsigned)keep[i] + 1;
  }
  close_range(lo, ~0U, 0);
}

static void loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr)) die("loopback: %m");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr)) die("bringing up lo: %m");
  close(fd);
}

static void child_main(const struct sb_spec *s, const char *wr, int syncr, int stubw, int nsw, int outw, int errw) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(outw, 1) < 0 || dup2(errw, 2) < 0) die("dup2: %m");
  int keep[] = {0, 1, 2, STATUS_FD, syncr, stubw, nsw};
  close_fds_except(keep, 7);
  char go;
  if (read(syncr, &go, 1) != 1) _exit(1); /* the launcher gave up */
  close(syncr);
  if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (s->net_none ? CLONE_NEWNET : 0))) die("unshare: %m");
  /* The launcher may hold the new mount namespace from now on (see the top of this file); if it
   * has not opened it before this process exits, the teardown just happens here, as it used to. */
  if (write(nsw, "\1", 1) != 1) die("unshare: telling the launcher: %m");
  close(nsw);
  if (*s->hostname && sethostname(s->hostname, strlen(s->hostname))) die("sethostname: %m");
  if (s->net_none) loopback_up();
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("making mounts private: %m");
  snprintf(merged_path, sizeof merged_path, "%s/merged", wr);
  char upper[PATH_MAX + 16];
  snprintf(upper, sizeof upper, "%s/upper", wr);
  if ((upper_fd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("upper dir: %m");
  mount_overlay(s, wr);
  int rootfd = open(merged_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (rootfd < 0 || fstat(rootfd, &st)) die("rootfs: %m");
  overlay_dev = st.st_dev;
  stub_fd = stubw;
  setup_mounts(s, wr, rootfd);
  close(stub_fd);
  close(upper_fd);
  stub_fd = upper_fd = -1;
  pivot_into(rootfd);
  close(rootfd);
  umask(022);
  struct exec_user eu;
  resolve_user(s->user, &eu);
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int cwd = ensure_path(root, s->cwd, 1, 0);
  if (cwd < 0 || fchdir(cwd)) die("working directory %s: %m", s->cwd);
  close(cwd);
  close(root);
  drop_privileges(&eu);
  size_t n = s->nenv;
  int has_home = 0;
  for (size_t i = 0; i < n; i++) has_home |= !strncmp(s->env[i], "HOME=", 5);
  if (!has_home) {
    char *home = malloc(strlen(eu.home) + 6);
    if (!home) die("out of memory");
    sprintf(home, "HOME=%s", eu.home);
    s->env[n++] = home;
  }
  s->env[n] = NULL;
  environ = (char **)s->env;
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* the status fd survives until exec succeeds */
  execvp(s->args[0], (char *const *)s->args);
  if (errno == ENOENT && !strchr(s->args[0], '/'))
    die("exec: \"%s\": executable file not found in $PATH", s->args[0]);
  die("exec: \"%s\": %m", s->args[0]);
}

static struct cgroups cg;
static char state_path[PATH_MAX + 32];

static void launcher_cleanup(void) {
  pid_t pid = child_pid;
  if (pid > 0) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  }
  cg_remove(&cg);
  unlink(state_path);
}

static void append_state(const char *fmt, long long a, unsigned long long b, const char *c) {
  char line[PATH_MAX + 128];
  int fd = open(state_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  int len = snprintf(line, sizeof line, fmt, a, b, c);
  write_all(fd, line, (size_t)len);
  close(fd);
}

/* Opens the child's mount namespace once it has unshared one (a byte on nsr). -1 if the child is
 * already gone: then its own exit tears the namespace down. */
static int hold_mount_ns(pid_t pid, int nsr) {
  char go, path[64];
  if (read(nsr, &go, 1) != 1) return -1;
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
  return open(path, O_RDONLY | O_CLOEXEC);
}

/* Pumps the child's output to ours, collects stub records and takes hold of the child's mount
 * namespace (*nsfd) until the child is reaped. */
static int supervise(pid_t pid, int outr, int errr, int stubr, int nsr, int *nsfd, char **stubs, size_t *stubs_len) {
  struct pollfd pf[4] = {{.fd = outr, .events = POLLIN}, {.fd = errr, .events = POLLIN}, {.fd = stubr, .events = POLLIN}, {.fd = nsr, .events = POLLIN}};
  size_t cap = 0;
  int status = 0, reaped = 0;
  char buf[65536];
  for (int final = 0; !final;) {
    if (reaped) final = 1; /* one last non-blocking drain after the child is gone */
    else poll(pf, pf[3].fd >= 0 ? 4 : 3, 200);
    /* Only while the child is unreaped: after that its pid may name another process. */
    if (pf[3].fd >= 0 && (pf[3].revents || final)) {
      if (!final) *nsfd = hold_mount_ns(pid, pf[3].fd);
      close(pf[3].fd);
      pf[3].fd = -1;
    }
    for (int i = 0; i < 3; i++) {
      while (pf[i].fd >= 0) {
        ssize_t r = read(pf[i].fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) {
          close(pf[i].fd);
          pf[i].fd = -1;
          break;
        }
        if (i < 2) write_all(i + 1, buf, (size_t)r); /* EPIPE: node is gone; keep draining */
        else {
          if (*stubs_len + (size_t)r > cap) {
            cap = (*stubs_len + (size_t)r) * 2;
            *stubs = realloc(*stubs, cap);
            if (!*stubs) die("out of memory");
          }
          memcpy(*stubs + *stubs_len, buf, (size_t)r);
          *stubs_len += (size_t)r;
        }
      }
    }
    if (!reaped) reaped = waitpid(pid, &status, WNOHANG) == pid;
  }
  return status;
}

int main(void) {
  int keep[] = {0, 1, 2, SPEC_FD, STATUS_FD};
  close_fds_except(keep, 5);
  signal(SIGPIPE, SIG_IGN);
  struct sb_spec s;
  memset(&s, 0, sizeof s);
  read_spec(&s);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (s.ppid && getppid() != s.ppid) die("parent process exited");
  char wr[PATH_MAX];
  if (!realpath(s.workroot, wr)) die("workroot %s: %m", s.workroot);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sa.sa_handler = on_chld; /* no SA_RESTART: poll wakes up when the child exits */
  sigaction(SIGCHLD, &sa, NULL);

  pid_t self = getpid();
  unsigned long long start = proc_starttime(self);
  char name[96];
  snprintf(name, sizeof name, "tsbuild-%d-%llu", (int)self, start);
  snprintf(state_path, sizeof state_path, "%s/sandbox.state", wr);
  unlink(state_path);
  append_state("launcher %lld %llu%s\n", self, start, "");
  die_hook = launcher_cleanup;
  cg_setup(&s, &cg, name);
  for (size_t i = 0; i < cg.n; i++) append_state("cgroup %lld %llu %s\n", 0, 0, cg.dirs[i]);

  int syncp[2], stubp[2], nsp[2], outp[2], errp[2];
  if (pipe2(syncp, O_CLOEXEC) || pipe2(stubp, O_CLOEXEC) || pipe2(nsp, O_CLOEXEC) || pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC))
    die("pipe: %m");
  if (unshare(CLONE_NEWPID)) die("unshare pid namespace: %m");
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid_t pid = fork();
  if (pid < 0) die("fork: %m");
  if (pid == 0) {
    die_hook = NULL;
    close(syncp[1]);
    close(stubp[0]);
    close(nsp[0]);
    close(outp[0]);
    close(errp[0]);
    child_main(&s, wr, syncp[0], stubp[1], nsp[1], outp[1], errp[1]);
  }
  child_pid = pid;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(syncp[0]);
  close(stubp[1]);
  close(nsp[1]);
  close(outp[1]);
  close(errp[1]);
  append_state("child %lld %llu%s\n", pid, proc_starttime(pid), "");
  cg_join(&cg, pid);
  if (aborted) kill(pid, SIGKILL);
  if (write(syncp[1], "\1", 1) != 1) die("starting child: %m");
  close(syncp[1]);
  fcntl(outp[0], F_SETFL, O_NONBLOCK);
  fcntl(errp[0], F_SETFL, O_NONBLOCK);
  fcntl(stubp[0], F_SETFL, O_NONBLOCK);
  fcntl(nsp[0], F_SETFL, O_NONBLOCK);
  char *stubs = NULL;
  size_t stubs_len = 0;
  int nsfd = -1;
  int status = supervise(pid, outp[0], errp[0], stubp[0], nsp[0], &nsfd, &stubs, &stubs_len);
  child_pid = 0;
  int oom = cg_oom_killed(&cg);
  char upper[PATH_MAX + 8];
  snprintf(upper, sizeof upper, "%s/upper", wr);
  if (stubs) remove_stubs(upper, stubs, stubs_len);
  cg_remove(&cg);
  unlink(state_path);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  char line[96];
  int len;
  if (aborted) { /* a terminal's Ctrl-C reaches us and the step together with node */
    len = snprintf(line, sizeof line, "A %d\n", (int)aborted);
    write_all(STATUS_FD, line, (size_t)len);
  }
  len = snprintf(line, sizeof line, "X %d %d %d\n", code, WIFSIGNALED(status) ? WTERMSIG(status) : 0, oom);
  write_all(STATUS_FD, line, (size_t)len);
  /* node has all it needs once these close; the unmount happens on the last reference. */
  close(1);
  close(2);
  close(STATUS_FD);
  if (nsfd >= 0) close(nsfd);
  return 0;
}
