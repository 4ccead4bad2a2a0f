/**
 * `RUN --mount=type=ssh`: the agent socket given with `--ssh ID=SOCKET` (or our own agent holding
 * the `--ssh ID=KEY` files, mount-ssh-agent.ts) reaches the step through
 * a proxy socket of our own, so the step sees BuildKit's owner and mode (uid/gid/mode options,
 * default root 0600) whatever the host socket's are, and never the host path itself.
 */
import { statSync, type Stats } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsbuildError } from '../util/errors.js';

export interface SshForward {
  /** The proxy socket on the host, to bind-mount at the target. */
  path: string;
  close: () => Promise<void>;
}

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

/** sun_path holds 108 bytes, the terminating NUL included. */
const SUN_PATH_MAX = 107;

/**
 * A fresh private dir for an `agent.sock`: under `stateDir` (the store's per-process staging dir,
 * which the next build sweeps if this process dies without removing it) when the socket path fits
 * in sun_path, else under the system tmpdir, where a crash leaves it behind.
 */
export async function socketDir(stateDir: string, prefix: string): Promise<string> {
  const fits = Buffer.byteLength(join(stateDir, `${prefix}-XXXXXX`, 'agent.sock')) <= SUN_PATH_MAX;
  return mkdtemp(fits ? join(stateDir, `${prefix}-`) : join(tmpdir(), `tsbuild-${prefix}-`));
}

/** Listens on a fresh socket (see socketDir) and forwards each connection to `agent`. */
export async function forwardAgent(agent: string, o: { mode: number; uid: number; gid: number; stateDir: string; signal?: AbortSignal }): Promise<SshForward> {
  o.signal?.throwIfAborted();
  const dir = await socketDir(o.stateDir, 'ssh');
  const path = join(dir, 'agent.sock');
  const conns = new Set<Socket>();
  const server: Server = createServer((client) => {
    const up = connect(agent);
    conns.add(client).add(up);
    client.on('close', () => conns.delete(client));
    up.on('close', () => conns.delete(up));
    pipeBoth(client, up);
  });
  const close = async (): Promise<void> => {
    for (const c of conns) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chown(path, o.uid, o.gid);
    await chmod(path, o.mode);
  } catch (err) {
    await close();
    throw new TsbuildError('SANDBOX', `cannot forward the SSH agent socket ${agent}: ${(err as Error).message}`, { cause: err });
  }
  return { path, close };
}

/**
 * `--ssh default|ID[=SOCKET|KEY[,KEY]]` (docker build's flag): an agent socket or private key files
 * by id; `default` alone means $SSH_AUTH_SOCK.
 */
export function parseSshSpecs(specs: string[], env: Record<string, string | undefined>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const given = eq < 0 ? [] : spec.slice(eq + 1).split(',').filter((p) => p !== '');
    if (id === '' || !/^[\w.-]+$/.test(id)) throw new TsbuildError('USAGE', `invalid --ssh ${JSON.stringify(spec)}: expected default|ID[=SOCKET|KEY[,KEY]]`);
    const paths = given.length > 0 ? given : env.SSH_AUTH_SOCK !== undefined && env.SSH_AUTH_SOCK !== '' ? [env.SSH_AUTH_SOCK] : [];
    if (paths.length === 0) throw new TsbuildError('USAGE', `--ssh ${spec}: no socket given and SSH_AUTH_SOCK is not set`, { hint: 'start ssh-agent and ssh-add your key, or pass --ssh ID=SOCKET|KEY' });
    const kinds = paths.map((p) => statOrUndefined(p));
    const socket = paths.length === 1 && kinds[0]?.isSocket() === true;
    const bad = paths.find((p, i) => !socket && kinds[i]?.isFile() !== true);
    if (bad !== undefined) throw new TsbuildError('USAGE', `--ssh ${spec}: ${bad} is neither an SSH agent socket nor a private key file`);
    out[id] = paths;
  }
  return out;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
