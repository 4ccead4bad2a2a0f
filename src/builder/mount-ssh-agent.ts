/**
 * `--ssh ID=KEY[,KEY]`: private key files are served by an ssh-agent of our own (OpenSSH's, one per
 * step, on a socket in a private temp dir), as docker buildx serves them from its in-process agent.
 * An encrypted key fails at once: no passphrase prompt in a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TsbuildError } from '../util/errors.js';
import { lstatOrUndefined } from '../util/fs.js';

export interface KeyAgent {
  socket: string;
  close: () => Promise<void>;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('error', reject).once('exit', (code) => resolve(code));
  });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return () => text.trim();
}

export async function startKeyAgent(id: string, keys: string[], signal?: AbortSignal): Promise<KeyAgent> {
  signal?.throwIfAborted();
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-agent-'));
  const socket = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  const agentErr = collect(agent);
  const close = async (): Promise<void> => {
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM');
      await exited(agent).catch(() => null);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const failed = exited(agent).then((code) => {
      throw new TsbuildError('SANDBOX', `ssh-agent for --ssh ${id} exited (${code ?? 'signal'}): ${agentErr()}`);
    });
    failed.catch(() => undefined);
    for (let i = 0; (await lstatOrUndefined(socket)) === undefined; i++) {
      if (i > 200) throw new TsbuildError('SANDBOX', `ssh-agent for --ssh ${id} did not start`);
      await Promise.race([sleep(10, undefined, signal !== undefined ? { signal } : {}), failed]);
    }
    // No terminal prompt: an encrypted key makes ssh-add fail at once (askpass forced to /bin/false).
    const add = spawn('ssh-add', ['-q', ...keys], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SSH_AUTH_SOCK: socket, SSH_ASKPASS: '/bin/false', SSH_ASKPASS_REQUIRE: 'force' },
    });
    const addErr = collect(add);
    if ((await exited(add)) !== 0) {
      throw new TsbuildError('USAGE', `--ssh ${id}: cannot load ${keys.join(', ')}: ${addErr() || 'ssh-add failed'}`, { hint: 'keys with a passphrase: load them into your own ssh-agent and pass --ssh ID=$SSH_AUTH_SOCK' });
    }
  } catch (err) {
    await close();
    if ((err as { code?: string }).code === 'ENOENT') throw new TsbuildError('USAGE', `--ssh ${id} with key files needs OpenSSH's ssh-agent and ssh-add`, { cause: err });
    throw err;
  }
  return { socket, close };
}
