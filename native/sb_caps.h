/* Capabilities: Docker's default set in bounding/permitted/effective, nothing inheritable or
 * ambient (CVE-2022-24769), then the uid/gid switch (which clears caps for non-root users). */
#ifndef SB_CAPS_H
#define SB_CAPS_H
#include "sb_user.h"
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>

static const int KEEP_CAPS[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,      CAP_MKNOD,
                                CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,           CAP_SETFCAP,     CAP_SETPCAP,
                                CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT,       CAP_KILL,        CAP_AUDIT_WRITE};

static void drop_privileges(const struct exec_user *eu) {
  uint64_t keep = 0;
  for (size_t i = 0; i < sizeof KEEP_CAPS / sizeof KEEP_CAPS[0]; i++) keep |= 1ULL << KEEP_CAPS[i];
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
      if (errno == EINVAL) break; /* past CAP_LAST_CAP */
      die("dropping capability %d: %m", cap);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) die("clearing ambient caps: %m");
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int w = 0; w < 2; w++) data[w].effective = data[w].permitted = (uint32_t)(keep >> (32 * w));
  if (syscall(SYS_capset, &hdr, data)) die("capset: %m");
  if (setgroups(eu->nsgids, eu->sgids)) die("setgroups: %m");
  if (setresgid(eu->gid, eu->gid, eu->gid)) die("setgid %u: %m", (unsigned)eu->gid);
  if (setresuid(eu->uid, eu->uid, eu->uid)) die("setuid %u: %m", (unsigned)eu->uid);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs: %m");
}

#endif
