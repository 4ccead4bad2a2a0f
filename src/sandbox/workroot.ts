/**
 * workRoot layout: upper/ work/ merged/ (overlay), empty/ (lower dir for FROM scratch), l/ (short
 * lower-dir links, old kernels only), hosts and resolv.conf (bind-mounted over the rootfs's),
 * sandbox.state (launcher pids and cgroups while a run is live; see stale.ts).
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../util/errors.js';
import type { PreparedFiles } from './protocol.js';
import type { SandboxSpec } from './types.js';

export async function prepareWorkRoot(spec: SandboxSpec, workRoot: string): Promise<PreparedFiles> {
  for (const dir of ['upper', 'work', 'merged', 'empty']) await mkdir(join(workRoot, dir), { recursive: true, mode: 0o755 });
  const files: PreparedFiles = { hostsPath: join(workRoot, 'hosts'), resolvPath: join(workRoot, 'resolv.conf') };
  await writeFile(files.hostsPath, spec.hostsFile ?? defaultHosts(spec.hostname), { mode: 0o644 });
  await writeFile(files.resolvPath, spec.resolvConf ?? (await hostResolvConf()), { mode: 0o644 });
  return files;
}

function defaultHosts(hostname: string): string {
  return `127.0.0.1\tlocalhost${hostname ? ` ${hostname}` : ''}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

/** The host's resolv.conf; a systemd-resolved stub (127.0.0.53) is useless in a container, so use the real upstreams. */
async function hostResolvConf(): Promise<string> {
  const text = await readOptional('/etc/resolv.conf');
  const servers = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]);
  if (servers.length > 0 && servers.every((s) => s === '127.0.0.53')) {
    const upstream = await readOptional('/run/systemd/resolve/resolv.conf');
    if (upstream) return upstream;
  }
  return text;
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return '';
    throw err;
  }
}

/** Removes everything in workRoot (never follows symlinks); a no-op when it is already empty or gone. */
export async function clearWorkRoot(workRoot: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(workRoot);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  await Promise.all(entries.map((e) => rm(join(workRoot, e), { recursive: true, force: true })));
}
