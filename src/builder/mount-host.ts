/**
 * RUN's `--mount`s on the host side: options expanded and defaulted as BuildKit does, bind sources
 * resolved when the step is prepared (they key the cache), then at run time the sandbox mounts,
 * the env a mount adds (secret env=, SSH_AUTH_SOCK) and what to release after the run.
 */
import { chown, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { RunMount } from '../parser/types.js';
import type { SandboxMount } from '../sandbox/index.js';
import { TsbuildError } from '../util/errors.js';
import { lstatOrUndefined } from '../util/fs.js';
import type { Expander } from './expand.js';
import { bindMount, resolveBind, type ResolvedBind } from './mount-bind.js';
import { cacheDir, resolveCacheSeed, type CacheSeed } from './mount-cache.js';
import { forwardAgent } from './mount-ssh.js';
import { startKeyAgent } from './mount-ssh-agent.js';
import type { StepEnv } from './steps.js';
import { ownValue } from '../util/own.js';

export interface ExpandedMount extends Omit<RunMount, 'raw'> {
  /** '' only for a secret exposed as an env variable alone. */
  target: string;
}

/**
 * BuildKit's defaults: a secret's id is its source or its target's base name; targets under /run;
 * a relative bind/cache/tmpfs target is below the working directory; `/` is refused.
 */
export function expandMounts(mounts: RunMount[], x: Expander, cwd: string): ExpandedMount[] {
  let ssh = 0;
  return mounts.map((m) => {
    const { raw, ...rest } = m;
    const source = m.source !== undefined ? x.word(m.source) : undefined;
    let target = m.target !== undefined ? x.word(m.target) : '';
    if (m.type === 'bind' || m.type === 'cache' || m.type === 'tmpfs') {
      if (target !== '' && !posix.isAbsolute(target)) target = posix.join('/', cwd, target);
      if (target !== '' && posix.join('/', target) === '/') throw new TsbuildError('DOCKERFILE', `RUN --mount=${raw}: invalid mount target "/"`);
    }
    let id = m.id !== undefined ? x.word(m.id) : undefined;
    if (m.type === 'secret') {
      const given = [source, id].find((v) => v !== undefined && v !== '');
      id = given ?? (target !== '' ? posix.basename(target) : '');
      if (target === '' && m.env === undefined) target = `/run/secrets/${posix.basename(id)}`;
    } else if (m.type === 'ssh') {
      if (source !== undefined && source !== '') throw new TsbuildError('DOCKERFILE', `RUN --mount=${raw}: ssh does not support source`);
      if (id === undefined || id === '') id = 'default';
      if (target === '') target = `/run/buildkit/ssh_agent.${ssh}`;
      ssh++;
    }
    if (target === '' && !(m.type === 'secret' && m.env !== undefined)) throw new TsbuildError('DOCKERFILE', `RUN --mount=${raw}: target is required`);
    return { ...rest, target, ...(source !== undefined ? { source } : {}), ...(id !== undefined ? { id } : {}) };
  });
}

export interface MountInputs {
  /** Bind mounts (and cache mounts with from=) by target: `label|content identity` (keyed). */
  keyed: Record<string, string>;
  /** Bind mounts by target: file -> digest, to name what changed (not keyed). */
  files: Record<string, Record<string, string>>;
  binds: Map<number, ResolvedBind>;
  /** Cache mounts with from=: their base. */
  seeds: Map<number, CacheSeed>;
}

export async function resolveMounts(mounts: ExpandedMount[], env: StepEnv): Promise<MountInputs> {
  const out: MountInputs = { keyed: {}, files: {}, binds: new Map(), seeds: new Map() };
  for (const [i, m] of mounts.entries()) {
    if (m.type === 'cache' && m.from !== undefined) {
      const seed = await resolveCacheSeed(m.from, m.source ?? '/', env);
      out.seeds.set(i, seed);
      out.keyed[m.target] = `${seed.label} (the cache base)|${seed.identity}`;
    }
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

export async function hostMounts(mounts: ExpandedMount[], inputs: MountInputs, workRoot: string, env: StepEnv): Promise<HostMounts> {
  const out: HostMounts = { mounts: [], env: [], release: () => Promise.resolve() };
  const releases: (() => Promise<void> | void)[] = [];
  out.release = async () => {
    for (const r of releases.splice(0).reverse()) await r();
  };
  const held = new Set<string>();
  try {
    for (const [i, m] of mounts.entries()) await addMount(m, i, inputs, workRoot, env, out, releases, held);
  } catch (err) {
    await out.release();
    throw err;
  }
  const ssh = mounts.find((m) => m.type === 'ssh');
  if (ssh !== undefined) out.env.push(`SSH_AUTH_SOCK=${ssh.target}`);
  return out;
}

async function addMount(
  m: ExpandedMount,
  i: number,
  inputs: MountInputs,
  workRoot: string,
  env: StepEnv,
  out: HostMounts,
  releases: (() => Promise<void> | void)[],
  held: Set<string>,
): Promise<void> {
  switch (m.type) {
    case 'cache': {
      const { dir, release } = await cacheDir(m, inputs.seeds.get(i), env, { scratch: join(workRoot, `cache-${i}`), held });
      releases.push(release);
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
      // Own keys only: an id such as __proto__ must not find Object.prototype.
      const src = ownValue(env.secrets, id);
      if (src === undefined) {
        if (m.required) throw new TsbuildError('USAGE', `secret ${id} is required but was not given (--secret id=${id},src=FILE or env=VAR)`);
        return;
      }
      const data = typeof src === 'string' ? await readFile(src, env.signal !== undefined ? { signal: env.signal } : {}) : Buffer.from(src.value);
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
      const agent = env.ssh !== undefined ? ownValue(env.ssh, id) : undefined;
      if (agent === undefined) {
        if (m.required) {
          throw new TsbuildError('USAGE', `no SSH agent "${id}" was forwarded, and the mount is required`, { hint: `build with --ssh ${id === 'default' ? 'default' : `${id}=SOCKET|KEY`} (an ssh-agent socket or private key files)` });
        }
        return;
      }
      let socket = agent[0] ?? '';
      if (!(await lstatOrUndefined(socket))?.isSocket()) {
        const own = await startKeyAgent(id, agent, { stateDir: env.store.tmpDir, ...(env.signal !== undefined ? { signal: env.signal } : {}) });
        releases.push(own.close);
        socket = own.socket;
      }
      const fwd = await forwardAgent(socket, { mode: m.mode ?? 0o600, uid: m.uid ?? 0, gid: m.gid ?? 0, stateDir: env.store.tmpDir, ...(env.signal !== undefined ? { signal: env.signal } : {}) });
      releases.push(fwd.close);
      out.mounts.push({ type: 'bind', source: fwd.path, target: m.target, readonly: false });
      return;
    }
  }
}
