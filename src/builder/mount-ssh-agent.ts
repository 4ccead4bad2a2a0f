/**
 * `--ssh ID=KEY[,KEY]`: private key files are served by an ssh-agent of our own (OpenSSH's, one per
 * step, on a socket in a private dir), as docker buildx serves them from its in-process agent.
 * An encrypted key fails at once: no passphrase prompt in a build.
 *
 * The agent holds decrypted keys, so it must not outlive tsbuild, even a SIGKILLed one: it is
 * started under `setpriv --pdeathsig KILL` (util-linux), and recorded for the stale sweep in case
 * that did not take (see agentCommand).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordHelperProcess } from '../sandbox/index.js';
import { TsbuildError } from '../util/errors.js';
import { lstatOrUndefined } from '../util/fs.js';
import { socketDir } from './mount-ssh.js';

export interface KeyAgent {
  socket: string;
  close: () => Promise<void>;
}

/** setpriv's exit status when it cannot exec the program (as a shell's "command not found"). */
const EXEC_FAILED = 127;

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

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this one
    }
  }
  return undefined;
}

/**
 * ssh-agent in the foreground, wrapped so that the kernel kills it when we die: setpriv sets
 * PR_SET_PDEATHSIG and execs it. `--no-new-privs` is needed too: Debian's ssh-agent is setgid
 * `_ssh`, and the credential change of a setgid exec clears the parent-death signal (without it
 * the agent outlived a SIGKILLed parent); with no_new_privs the bit is ignored. ssh-agent has it
 * only to stop same-user ptrace, which its own PR_SET_DUMPABLE 0 still does. The signal follows
 * the thread that forked: libuv spawns from the calling thread, the main one for the CLI.
 * Without setpriv the agent is started bare, and only the sweep stops a survivor.
 */
async function agentCommand(socket: string): Promise<{ file: string; args: string[]; wrapped: boolean }> {
  const agent = ['ssh-agent', '-D', '-a', socket];
  const setpriv = await wrapper();
  if (setpriv === undefined) return { file: 'ssh-agent', args: agent.slice(1), wrapped: false };
  return { file: setpriv, args: [...WRAP, ...agent], wrapped: true };
}

const WRAP = ['--pdeathsig', 'KILL', '--no-new-privs', '--'];
let probed: Promise<string | undefined> | undefined;

/**
 * util-linux setpriv when it is on PATH and takes these options (busybox's setpriv has no
 * --pdeathsig): tried once per process on `true`, so a missing option cannot fail the agent.
 */
function wrapper(): Promise<string | undefined> {
  probed ??= new Promise((resolve) => {
    const setpriv = onPath('setpriv');
    if (setpriv === undefined) return resolve(undefined);
    const probe = spawn(setpriv, [...WRAP, 'true'], { stdio: 'ignore' });
    probe.once('error', () => resolve(undefined)).once('exit', (code) => resolve(code === 0 ? setpriv : undefined));
  });
  return probed;
}

function needsOpenSsh(id: string, cause?: unknown): TsbuildError {
  return new TsbuildError('USAGE', `--ssh ${id} with key files needs OpenSSH's ssh-agent and ssh-add`, cause !== undefined ? { cause } : {});
}

/** `stateDir`: the store's per-process staging dir, where the agent's dir goes when its socket path fits. */
export async function startKeyAgent(id: string, keys: string[], options: { stateDir: string; signal?: AbortSignal }): Promise<KeyAgent> {
  const { signal } = options;
  signal?.throwIfAborted();
  const dir = await socketDir(options.stateDir, 'agent');
  const socket = join(dir, 'agent.sock');
  const command = await agentCommand(socket);
  const agent = spawn(command.file, command.args, { stdio: ['ignore', 'ignore', 'pipe'] });
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
      if (command.wrapped && code === EXEC_FAILED) throw needsOpenSsh(id);
      throw new TsbuildError('SANDBOX', `ssh-agent for --ssh ${id} exited (${code ?? 'signal'}): ${agentErr()}`);
    });
    failed.catch(() => undefined);
    if (agent.pid !== undefined) await recordHelperProcess(dir, agent.pid);
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
    if ((err as { code?: string }).code === 'ENOENT') throw needsOpenSsh(id, err);
    throw err;
  }
  return { socket, close };
}
