/**
 * RUN's `--mount`s on the host side: options expanded and defaulted as BuildKit does, bind sources
 * resolved when the step is prepared (they key the cache), then at run time the sandbox mounts,
 * the env a mount adds (secret env=, SSH_AUTH_SOCK) and what to release after the run.
 */
import { createHash } from 'node:crypto';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { RunMount } from '../parser/types.js';
import type { SandboxMount } from '../sandbox/index.js';
import { TsbuildError } from '../util/errors.js';
import type { Expander } from './expand.js';
import { bindMount, resolveBind, type ResolvedBind } from './mount-bind.js';
import { forwardAgent } from './mount-ssh.js';
import type { StepEnv } from './steps.js';

export interface ExpandedMount extends Omit<RunMount, 'raw'> {
  /** '' only for a secret exposed as an env variable alone. */
  target: string;
}

/** BuildKit's defaults: a secret's id is its source or its target's base name; targets under /run. */
export function expandMounts(mounts: RunMount[], x: Expander): ExpandedMount[] {
  let ssh = 0;
  return mounts.map((m) => {
    const { raw, ...rest } = m;
    const source = m.source !== undefined ? x.word(m.source) : undefined;
    let target = m.target !== undefined ? x.word(m.target) : '';
    let id = m.id !== undefined ? x.word(m.id) : undefined;
    if (m.type === 'secret') {
      id = source ?? id ?? (target !== '' ? posix.basename(target) : '');
      if (target === '' && m.env === undefined) target = `/run/secrets/${posix.basename(id)}`;
    } else if (m.type === 'ssh') {
      id ??= 'default';
      if (target === '') target = `/run/buildkit/ssh_agent.${ssh}`;
      ssh++;
    }
    if (target === '' && !(m.type === 'secret' && m.env !== undefined)) throw new TsbuildError('DOCKERFILE', `RUN --mount=${raw}: target is required`);
    return { ...rest, target, ...(source !== undefined ? { source } : {}), ...(id !== undefined ? { id } : {}) };
  });
}

export interface MountInputs {
  /** Bind mounts by target: `label|digest` (keyed). */
  keyed: Record<string, string>;
  /** Bind mounts by target: file -> digest, to name what changed (not keyed). */
  files: Record<string, Record<string, string>>;
  binds: Map<number, ResolvedBind>;
}

export async function resolveMounts(mounts: ExpandedMount[], env: StepEnv): Promise<MountInputs> {
  const out: MountInputs = { keyed: {}, files: {}, binds: new Map() };
  for (const [i, m] of mounts.entries()) {
    if (m.type !== 'bind') continue;
    const b = await resolveBind(m, env);
    out.binds.set(i, b);
    out.keyed[m.target] = `${b.label}|${b.digest}`;
    if (b.files !== undefined) out.files[m.target] = b.files;
  }
  return out;
}

export interface HostMounts {
  mounts: SandboxMount[];
  /** KEY=VALUE the mounts add to the step's env. */
  env: string[];
  release(): Promise<void>;
}

/** Serialises `sharing=locked` cache users within this process. */
const cacheLocks = new Map<string, Promise<void>>();

async function lockCache(dir: string): Promise<() => void> {
  const prev = cacheLocks.get(dir) ?? Promise.resolve();
  let unlock = (): void => undefined;
  const mine = new Promise<void>((resolve) => (unlock = resolve));
  const chained = prev.then(() => mine);
  cacheLocks.set(dir, chained);
  await prev;
  return () => {
    unlock();
    if (cacheLocks.get(dir) === chained) cacheLocks.delete(dir);
  };
}

export async function hostMounts(mounts: ExpandedMount[], inputs: MountInputs, workRoot: string, env: StepEnv): Promise<HostMounts> {
  const out: HostMounts = { mounts: [], env: [], release: () => Promise.resolve() };
  const releases: (() => Promise<void> | void)[] = [];
  out.release = async () => {
    for (const r of releases.splice(0).reverse()) await r();
  };
  try {
    for (const [i, m] of mounts.entries()) await addMount(m, i, inputs, workRoot, env, out, releases);
  } catch (err) {
    await out.release();
    throw err;
  }
  const ssh = mounts.find((m) => m.type === 'ssh');
  if (ssh !== undefined) out.env.push(`SSH_AUTH_SOCK=${ssh.target}`);
  return out;
}

async function addMount(m: ExpandedMount, i: number, inputs: MountInputs, workRoot: string, env: StepEnv, out: HostMounts, releases: (() => Promise<void> | void)[]): Promise<void> {
  switch (m.type) {
    case 'cache': {
      // The id is hashed into the directory name, so `id=../../..` can never name a host path (CVE-2024-9675).
      const id = m.id ?? m.target;
      const dir = join(env.store.root, 'cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
      const made = await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
      if (made === dir && (m.uid !== undefined || m.gid !== undefined)) await chown(dir, m.uid ?? 0, m.gid ?? 0);
      if (m.sharing === 'locked') releases.push(await lockCache(dir));
      out.mounts.push({ type: 'bind', source: dir, target: m.target, readonly: m.readonly });
      return;
    }
    case 'tmpfs':
      out.mounts.push({ type: 'tmpfs', target: m.target, ...(m.size !== undefined ? { sizeBytes: m.size } : {}) });
      return;
    case 'bind': {
      const b = inputs.binds.get(i);
      if (b === undefined) throw new TsbuildError('INTERNAL', `bind mount ${m.target} was not resolved`);
      out.mounts.push(await bindMount(b.source, m.target, m.readonly, workRoot, i, env.signal));
      return;
    }
    case 'secret': {
      const id = m.id ?? '';
      const src = env.secrets[id];
      if (src === undefined) {
        if (m.required) throw new TsbuildError('USAGE', `secret ${id} is required but was not given (--secret id=${id},src=FILE)`);
        return;
      }
      const data = await readFile(src, env.signal !== undefined ? { signal: env.signal } : {});
      if (m.env !== undefined) out.env.push(`${m.env}=${data.toString('utf8')}`);
      if (m.target === '') return;
      // A private copy with BuildKit's owner and mode (root 0400 unless uid/gid/mode say otherwise).
      const copy = join(workRoot, `secret-${i}`);
      await writeFile(copy, data, { mode: m.mode ?? 0o400 });
      await chown(copy, m.uid ?? 0, m.gid ?? 0);
      out.mounts.push({ type: 'bind', source: copy, target: m.target, readonly: true });
      return;
    }
    case 'ssh': {
      const id = m.id ?? 'default';
      const agent = env.ssh?.[id];
      if (agent === undefined) {
        if (m.required) {
          throw new TsbuildError('USAGE', `no SSH agent "${id}" was forwarded, and the mount is required`, { hint: `build with --ssh ${id === 'default' ? 'default' : `${id}=SOCKET`} (an ssh-agent socket)` });
        }
        return;
      }
      const fwd = await forwardAgent(agent, { mode: m.mode ?? 0o600, uid: m.uid ?? 0, gid: m.gid ?? 0, ...(env.signal !== undefined ? { signal: env.signal } : {}) });
      releases.push(fwd.close);
      out.mounts.push({ type: 'bind', source: fwd.path, target: m.target, readonly: false });
      return;
    }
  }
}
