/**
 * workRoot layout: upper/ work/ merged/ (overlay), empty/ (lower dir for FROM scratch), l/ (short
 * lower-dir links, old kernels only), hosts and resolv.conf (bind-mounted over the rootfs's),
 * sandbox.state (launcher pids and cgroups while a run is live; see stale.ts).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../util/errors.js';
import type { PreparedFiles } from './protocol.js';
import type { SandboxSpec } from './types.js';

// Synchronous calls: a handful of tiny dirs and files per RUN, where thread-pool round trips cost
// more than the calls (the same reasoning as util/fs.ts writeAtomic).
export async function prepareWorkRoot(spec: SandboxSpec, workRoot: string): Promise<PreparedFiles> {
  await Promise.resolve();
  for (const dir of ['upper', 'work', 'merged', 'empty']) mkdirSync(join(workRoot, dir), { recursive: true, mode: 0o755 });
  const files: PreparedFiles = { hostsPath: join(workRoot, 'hosts'), resolvPath: join(workRoot, 'resolv.conf') };
  writeFileSync(files.hostsPath, spec.hostsFile ?? defaultHosts(spec.hostname), { mode: 0o644 });
  writeFileSync(files.resolvPath, spec.resolvConf ?? hostResolvConf(), { mode: 0o644 });
  return files;
}

function defaultHosts(hostname: string): string {
  return `127.0.0.1\tlocalhost${hostname ? ` ${hostname}` : ''}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

/** The host's resolv.conf; a systemd-resolved stub (127.0.0.53) is useless in a container, so use the real upstreams. */
function hostResolvConf(): string {
  const text = readOptional('/etc/resolv.conf');
  const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]);
  if (servers.length > 0 && servers.every((s) => s === '127.0.0.53')) {
    const upstream = readOptional('/run/systemd/resolve/resolv.conf');
    if (upstream) return upstream;
  }
  return text;
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return '';
    throw err;
  }
}

/**
 * Removes everything in workRoot (never follows symlinks); a no-op when it is already empty or gone.
 * The small entries synchronously; upper/, still there when its layer was not adopted, may be any
 * size, so it goes through the thread pool.
 */
export async function clearWorkRoot(workRoot: string): Promise<void> {
  await Promise.resolve();
  let entries: string[];
  try {
    entries = readdirSync(workRoot);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) if (e !== 'upper') rmSync(join(workRoot, e), { recursive: true, force: true });
  if (entries.includes('upper')) await rm(join(workRoot, 'upper'), { recursive: true, force: true });
}
