/* Per-run cgroups named tsbuild-<launcher pid>-<launcher starttime>, created next to the
 * launcher's own cgroup (v1: in memory, pids, cpu; v2: one unified group, under the root group
 * when ours cannot delegate controllers). Hierarchies are found through /proc/self/mountinfo.
 * The name lets cleanupStale() tell a crashed run's leftovers from a live one.
 * The v2 path is untested on the development host (v1/hybrid). */
#ifndef SB_CGROUP_H
#define SB_CGROUP_H
#include "sb_spec.h"
#include <dirent.h>

struct cgroups {
  int v2;
  size_t n;
  char dirs[3][PATH_MAX];
  char memory[PATH_MAX]; /* the dir holding memory.* files, "" if none */
};

/* Our own cgroup path for a v1 controller (or the v2 path when ctrl is ""). */
static int own_cgroup(const char *ctrl, char *out, size_t cap) {
  char buf[8192];
  if (read_small("/proc/self/cgroup", buf, sizeof buf) < 0) return -1;
  for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    char *list = c1 + 1;
    int match = !*ctrl ? !*list : 0;
    for (char *s2 = NULL, *c = *ctrl ? strtok_r(list, ",", &s2) : NULL; c; c = strtok_r(NULL, ",", &s2))
      if (!strcmp(c, ctrl)) match = 1;
    if (match) {
      snprintf(out, cap, "%s", strcmp(c2 + 1, "/") ? c2 + 1 : "");
      return 0;
    }
  }
  return -1;
}

/* Where a hierarchy is mounted, from /proc/self/mountinfo (not assumed to be /sys/fs/cgroup:
 * hybrid hosts mount v2 at /sys/fs/cgroup/unified, containers may mount a sub-tree). ctrl ""
 * asks for the cgroup2 mount, otherwise the v1 mount whose super options name ctrl. mnt_root
 * is the hierarchy path shown at the mount point ("" for the hierarchy's root). */
static int cg_mount(const char *ctrl, char *mnt, size_t mcap, char *mnt_root, size_t rcap) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return -1;
  char line[4096];
  int found = -1;
  while (found && fgets(line, sizeof line, f)) {
    char *field[6], *save = NULL, *tok = strtok_r(line, " \n", &save);
    size_t nf = 0;
    for (; tok && nf < 6; tok = strtok_r(NULL, " \n", &save)) field[nf++] = tok;
    while (tok && strcmp(tok, "-")) tok = strtok_r(NULL, " \n", &save); /* skip optional fields */
    char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL, *source = strtok_r(NULL, " \n", &save);
    char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
    if (nf < 6 || !fstype || !super) continue;
    int match = !*ctrl && !strcmp(fstype, "cgroup2");
    if (*ctrl && !strcmp(fstype, "cgroup"))
      for (char *s2 = NULL, *o = strtok_r(super, ",", &s2); o && !match; o = strtok_r(NULL, ",", &s2)) match = !strcmp(o, ctrl);
    if (!match) continue;
    snprintf(mnt, mcap, "%s", field[4]);
    snprintf(mnt_root, rcap, "%s", strcmp(field[3], "/") ? field[3] : "");
    found = 0;
  }
  fclose(f);
  return found;
}

/* Our group's directory in the hierarchy of ctrl ("" = v2): mount point + our path below the
 * mount's root. Also returns the mount point itself (for the v2 root-group fallback). */
static int cg_own_dir(const char *ctrl, char *dir, size_t cap, char *mnt, size_t mcap) {
  char root[PATH_MAX], own[PATH_MAX];
  if (cg_mount(ctrl, mnt, mcap, root, sizeof root) || own_cgroup(ctrl, own, sizeof own)) return -1;
  size_t rl = strlen(root);
  const char *below = own;
  if (rl && !strncmp(own, root, rl) && (own[rl] == 0 || own[rl] == '/')) below = own + rl;
  else if (rl) below = ""; /* our group is not under this mount's root: use the visible root */
  snprintf(dir, cap, "%s%s", mnt, below);
  return 0;
}

static int cg_set(const char *dir, const char *file, long long v, const char *fmt) {
  char path[PATH_MAX + 64], val[64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  snprintf(val, sizeof val, fmt, v);
  return write_file(path, val);
}

static int cg_make(struct cgroups *cg, const char *parent, const char *name) {
  char *d = cg->dirs[cg->n];
  snprintf(d, PATH_MAX, "%s/%s", parent, name);
  if (mkdir(d, 0755) && errno != EEXIST) return -1;
  cg->n++;
  return 0;
}

static void cg_setup_v2(const struct sb_spec *s, struct cgroups *cg, const char *name, char *own, const char *mnt) {
  char sub[PATH_MAX + 64];
  cg->v2 = 1;
  snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", own);
  /* "No internal processes": our own group may not delegate controllers while node sits in it,
   * so fall back to the hierarchy's root group (exempt from that rule). */
  if (write_file(sub, "+memory +pids +cpu") && strcmp(own, mnt)) {
    snprintf(own, PATH_MAX, "%s", mnt);
    snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", mnt);
    write_file(sub, "+memory +pids +cpu");
  }
  if (cg_make(cg, own, name)) {
    if (s->memory >= 0 || s->pids >= 0 || s->cpu_quota >= 0) die("creating cgroup %s: %m", cg->dirs[0]);
    return;
  }
  snprintf(cg->memory, sizeof cg->memory, "%s", cg->dirs[0]);
  if (s->memory >= 0) {
    if (cg_set(cg->dirs[0], "memory.max", s->memory, "%lld")) die("setting memory limit: %m");
    cg_set(cg->dirs[0], "memory.swap.max", 0, "%lld"); /* absent without swap accounting */
  }
  if (s->pids >= 0 && cg_set(cg->dirs[0], "pids.max", s->pids, "%lld")) die("setting pids limit: %m");
  if (s->cpu_quota >= 0 && cg_set(cg->dirs[0], "cpu.max", s->cpu_quota, "%lld 100000")) die("setting cpu limit: %m");
}

/* Creates the groups and writes limits; a requested limit whose controller is missing is fatal.
 * v1 (also the hybrid layout, whose unified v2 mount holds no controllers) when any of memory,
 * pids, cpu has a v1 hierarchy; otherwise the unified v2 hierarchy. */
static void cg_setup(const struct sb_spec *s, struct cgroups *cg, const char *name) {
  memset(cg, 0, sizeof *cg);
  /* No limit asked for: no groups. Joining one costs the step an RCU grace period (the first
   * cgroup.procs write, 7-10 ms measured on v1), and nothing needs them: the pid namespace already
   * takes every process down with the step. Without a memory group a kernel OOM kill shows as
   * SIGKILL (exit 137), which is what BuildKit reports too. */
  if (s->memory < 0 && s->pids < 0 && s->cpu_quota < 0) return;
  static const char *const ctrls[] = {"memory", "pids", "cpu"};
  const long long want[] = {s->memory, s->pids, s->cpu_quota};
  char own[3][PATH_MAX], mnt[PATH_MAX];
  int have[3], any_v1 = 0;
  for (size_t i = 0; i < 3; i++) any_v1 |= have[i] = cg_own_dir(ctrls[i], own[i], PATH_MAX, mnt, sizeof mnt) == 0;
  if (!any_v1) {
    if (cg_own_dir("", own[0], PATH_MAX, mnt, sizeof mnt) == 0) cg_setup_v2(s, cg, name, own[0], mnt);
    else if (s->memory >= 0 || s->pids >= 0 || s->cpu_quota >= 0) die("no cgroup hierarchy mounted for the resource limits");
    return;
  }
  for (size_t i = 0; i < 3; i++) {
    if (!have[i] || cg_make(cg, own[i], name)) {
      if (want[i] >= 0) die("cgroup controller %s unavailable for the %s limit", ctrls[i], ctrls[i]);
      continue;
    }
    const char *d = cg->dirs[cg->n - 1];
    int rc = 0;
    if (i == 0) {
      snprintf(cg->memory, sizeof cg->memory, "%s", d);
      if (want[0] >= 0) {
        rc = cg_set(d, "memory.limit_in_bytes", want[0], "%lld");
        cg_set(d, "memory.memsw.limit_in_bytes", want[0], "%lld"); /* absent without swap accounting */
        cg_set(d, "memory.swappiness", 0, "%lld");
      }
    } else if (i == 1 && want[1] >= 0) rc = cg_set(d, "pids.max", want[1], "%lld");
    else if (i == 2 && want[2] >= 0)
      rc = cg_set(d, "cpu.cfs_period_us", 100000, "%lld") || cg_set(d, "cpu.cfs_quota_us", want[2], "%lld");
    if (rc) die("setting %s limit: %m", ctrls[i]);
  }
}

static void cg_join(const struct cgroups *cg, pid_t pid) {
  for (size_t i = 0; i < cg->n; i++)
    if (cg_set(cg->dirs[i], "cgroup.procs", pid, "%lld")) die("joining cgroup %s: %m", cg->dirs[i]);
}

/* The kernel's oom_kill counter for the group (memory.oom_control on v1, memory.events on v2). */
static int cg_oom_killed(const struct cgroups *cg) {
  if (!cg->memory[0]) return 0;
  char path[PATH_MAX + 32], buf[4096];
  snprintf(path, sizeof path, "%s/%s", cg->memory, cg->v2 ? "memory.events" : "memory.oom_control");
  if (read_small(path, buf, sizeof buf) < 0) return 0;
  char *p = strstr(buf, "oom_kill ");
  return p && strtoll(p + 9, NULL, 10) > 0;
}

/* Kills whatever is left in the groups (nothing, normally: the pid namespace is gone) and removes them. */
static void cg_remove(const struct cgroups *cg) {
  for (size_t i = 0; i < cg->n; i++) {
    for (int tries = 0; tries < 200; tries++) {
      if (rmdir(cg->dirs[i]) == 0 || errno == ENOENT) break;
      char path[PATH_MAX + 32], buf[8192];
      snprintf(path, sizeof path, "%s/cgroup.procs", cg->dirs[i]);
      if (read_small(path, buf, sizeof buf) > 0)
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
          kill((pid_t)atoi(l), SIGKILL);
      usleep(10000);
    }
  }
}

#endif
