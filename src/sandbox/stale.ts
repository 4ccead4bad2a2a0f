/**
 * cleanupStale: undo what a crashed run left behind. Mounts need no work (they only ever exist in
 * the step's mount namespace, which dies with its processes); what can remain is a step process
 * (if even PDEATHSIG failed) and per-run cgroups. Both are found two ways: the sandbox.state file
 * a live launcher keeps in its workRoot (stateDir itself or any direct child of it is treated as
 * a workRoot), and tsbuild-<pid>-<starttime> cgroups next to ours whose launcher is gone.
 */
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../util/abort.js';
import { errnoCode } from '../util/errors.js';

const CG_ROOT = '/sys/fs/cgroup';

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat, or undefined when the process is gone. */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
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

/** Directories that hold our per-run cgroups: next to this process's own cgroup(s). */
async function cgroupParents(): Promise<string[]> {
  const own = (await readText('/proc/self/cgroup')) ?? '';
  const parents: string[] = [];
  for (const line of own.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, list = '', path = ''] = m;
    const rel = path === '/' ? '' : path;
    if (list === '') parents.push(CG_ROOT + rel, CG_ROOT); // v2: next to ours, or under the root group
    for (const ctrl of list.split(',')) if (['memory', 'pids', 'cpu'].includes(ctrl)) parents.push(`${CG_ROOT}/${ctrl}${rel}`);
  }
  return parents;
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
