/**
 * cleanupStale: undo what a crashed run left behind. Mounts need no work (they only ever exist in
 * the step's mount namespace, which dies with its processes); what can remain is a step process
 * or a helper such as the --ssh key agent (if even PDEATHSIG failed) and per-run cgroups. Both
 * are found two ways: the sandbox.state file a live launcher keeps in its workRoot (stateDir
 * itself or any direct child of it is treated as a workRoot; recordHelperProcess writes one for a
 * helper), and tsbuild-<pid>-<starttime> cgroups next to ours whose launcher is gone.
 */
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../util/abort.js';
import { errnoCode } from '../util/errors.js';

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Field 22 of /proc/<pid>/stat (start time), or undefined when the process is gone or a zombie: an
 * orphaned launcher killed with its builder lingers as a zombie until init reaps it, and a zombie
 * holds no cgroup and runs no cleanup.
 */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

async function isAlive(pid: number, start: string): Promise<boolean> {
  return pid > 0 && (await startTime(pid)) === start;
}

async function killIfSame(pid: number, start: string): Promise<void> {
  if (!(await isAlive(pid, start))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Records a helper process of ours that is not a step (the ssh-agent serving `--ssh ID=KEY`) in
 * `dir`/sandbox.state, in the launcher's format with this process as the launcher. Such helpers
 * die with us by PDEATHSIG; should that fail (no setpriv, or a kill between fork and prctl),
 * cleanupStale on the parent of `dir` kills the survivor once this process is gone.
 */
export async function recordHelperProcess(dir: string, pid: number): Promise<void> {
  const [ours, its] = await Promise.all([startTime(process.pid), startTime(pid)]);
  if (ours === undefined || its === undefined) return; // it is gone already: nothing to guard
  await writeFile(join(dir, 'sandbox.state'), `launcher ${process.pid} ${ours}\nchild ${pid} ${its}\n`, { mode: 0o600 });
}

async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      const procs = (await readText(join(dir, 'cgroup.procs'))) ?? '';
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await sleep(20);
    }
  }
}

async function cleanupWorkRoot(dir: string): Promise<void> {
  const statePath = join(dir, 'sandbox.state');
  const text = await readText(statePath);
  if (text === undefined) return;
  const lines = text.split('\n').map((l) => l.split(' '));
  const launcher = lines.find((l) => l[0] === 'launcher');
  if (launcher && (await isAlive(Number(launcher[1]), launcher[2] ?? ''))) return; // a live run
  for (const [kind, pid, start, ...rest] of lines) {
    if (kind === 'child') await killIfSame(Number(pid), start ?? '');
    if (kind === 'cgroup') await removeCgroup(rest.join(' '));
  }
  await rm(statePath, { force: true });
}

interface CgroupMount {
  /** '' for the cgroup2 hierarchy, else the v1 super options (controllers). */
  controllers: string[];
  v2: boolean;
  /** The hierarchy path shown at the mount point ('' for its root). */
  root: string;
  mountPoint: string;
}

/** cgroup mounts from /proc/self/mountinfo: `id parent dev root mountpoint opts [optional...] - type source super`. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const [type, , superOpts = ''] = fields.slice(dash + 1);
    if (dash < 6 || (type !== 'cgroup' && type !== 'cgroup2')) continue;
    const root = fields[3] ?? '/';
    mounts.push({ controllers: type === 'cgroup' ? superOpts.split(',') : [], v2: type === 'cgroup2', root: root === '/' ? '' : root, mountPoint: fields[4] ?? '' });
  }
  return mounts;
}

/** Directories that hold our per-run cgroups: next to this process's own cgroup(s), as the launcher creates them. */
async function cgroupParents(): Promise<string[]> {
  const own = (await readText('/proc/self/cgroup')) ?? '';
  const mounts = parseCgroupMounts((await readText('/proc/self/mountinfo')) ?? '');
  const below = (m: CgroupMount, path: string): string => {
    const rel = path === '/' ? '' : path;
    if (m.root === '') return m.mountPoint + rel;
    return rel === m.root || rel.startsWith(`${m.root}/`) ? m.mountPoint + rel.slice(m.root.length) : m.mountPoint;
  };
  const parents = new Set<string>();
  for (const line of own.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, list = '', path = ''] = m;
    const ctrls = list.split(',').filter((c) => ['memory', 'pids', 'cpu'].includes(c));
    for (const mount of mounts) {
      if (list === '' && mount.v2) {
        parents.add(below(mount, path)); // v2: next to ours, or under the root group
        parents.add(mount.mountPoint);
      } else if (ctrls.some((c) => mount.controllers.includes(c))) parents.add(below(mount, path));
    }
  }
  return [...parents];
}

async function sweepCgroups(): Promise<void> {
  for (const parent of await cgroupParents()) {
    let entries: string[];
    try {
      entries = await readdir(parent);
    } catch {
      continue;
    }
    for (const name of entries) {
      const m = /^tsbuild-(\d+)-(\d+)$/.exec(name);
      if (m && !(await isAlive(Number(m[1]), m[2] ?? ''))) await removeCgroup(join(parent, name));
    }
  }
}

export async function cleanupStale(stateDir: string): Promise<void> {
  await cleanupWorkRoot(stateDir);
  let entries: string[] = [];
  try {
    entries = (await readdir(stateDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  for (const name of entries) await cleanupWorkRoot(join(stateDir, name));
  await sweepCgroups();
}

