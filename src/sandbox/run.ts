/**
 * runInSandbox: prepares workRoot, spawns the native launcher with the spec on fd 3, pumps
 * stdout/stderr to the callbacks and turns the launcher's status (fd 4) into a result or a
 * TsbuildError('SANDBOX'). Abort sends SIGTERM: the launcher kills the step's pid namespace,
 * removes its cgroups and exits; SIGKILL follows if it does not within a few seconds.
 * The result comes as soon as the launcher has written the step's exit and closed its output,
 * while it may still be letting go of the step's mount namespace (native/sandbox.c: the
 * unmount runs on the other core during the commit); dispose() waits for its exit before it
 * removes the work root.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { throwIfAborted } from '../util/abort.js';
import { AbortError, TsbuildError } from '../util/errors.js';
import { findLauncher } from './launcher.js';
import { encodeSpec, parseStatus } from './protocol.js';
import type { SandboxResult, SandboxSpec } from './types.js';
import { clearWorkRoot, prepareWorkRoot } from './workroot.js';

const KILL_GRACE_MS = 5_000;

export async function runInSandbox(spec: SandboxSpec, options: { signal?: AbortSignal } = {}): Promise<SandboxResult> {
  const { signal } = options;
  throwIfAborted(signal);
  const workRoot = resolve(spec.workRoot);
  let ok = false;
  let launcherExited: Promise<void> = Promise.resolve();
  const clear = async (): Promise<void> => {
    await launcherExited;
    await clearWorkRoot(workRoot);
  };
  try {
    const launcher = await findLauncher();
    const files = await prepareWorkRoot(spec, workRoot);
    const input = encodeSpec(spec, workRoot, files);
    throwIfAborted(signal);
    const { exitStatus, statusText, aborted, exited } = await runLauncher(launcher, input, spec, signal);
    launcherExited = exited;
    const status = parseStatus(statusText);
    if (aborted) throw new AbortError(signal?.reason);
    // Ctrl-C reaches the launcher and node together; whichever sees it first, it is an interruption.
    if (status.interrupted !== undefined) throw new AbortError(new Error(`sandbox interrupted by ${signalNameOf(status.interrupted)}`));
    if (status.errors.length > 0) throw new TsbuildError('SANDBOX', status.errors[0] ?? 'sandbox failed');
    if (!status.exit) throw new TsbuildError('SANDBOX', `sandbox launcher died unexpectedly (${exitStatus})`);
    const { code, signal: sig, oomKilled } = status.exit;
    const signalName = sig > 0 ? signalNameOf(sig) : undefined;
    ok = true;
    return {
      exitCode: code,
      ...(signalName === undefined ? {} : { signal: signalName }),
      oomKilled,
      upperDir: join(workRoot, 'upper'),
      dispose: clear,
    };
  } finally {
    if (!ok) await clear();
  }
}

function signalNameOf(n: number): string {
  const entry = Object.entries(constants.signals).find(([, v]) => v === n);
  return entry ? entry[0] : `SIG${n}`;
}

interface LauncherOutcome {
  /** How the launcher ended ("exit 0"), or "running" when the outcome came before its exit. */
  exitStatus: string;
  statusText: string;
  aborted: boolean;
  /** Settles when the launcher has exited (never rejects). */
  exited: Promise<void>;
}

/** The launcher's last line for a step that ran: "X exit signal oom". */
const EXIT_LINE = /^X /m;

function runLauncher(launcher: string, input: Buffer, spec: SandboxSpec, signal?: AbortSignal): Promise<LauncherOutcome> {
  return new Promise((resolvePromise, reject) => {
    const env: Record<string, string> = {};
    const legacy = process.env.TSBUILD_SANDBOX_LEGACY_OVERLAY;
    if (legacy !== undefined) env.TSBUILD_SANDBOX_LEGACY_OVERLAY = legacy;
    const child = spawn(launcher, [], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env });
    const [, stdout, stderr, specIn, statusOut] = child.stdio as [null, Readable, Readable, Writable, Readable];
    let statusText = '';
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const exited = new Promise<void>((done) => child.once('close', () => done()));
    // Output and status are complete when all three pipes have closed; with an exit line in the
    // status, that is the outcome, whether or not the launcher has exited yet.
    let openPipes = 3;
    const onPipeClosed = (): void => {
      if (--openPipes === 0 && EXIT_LINE.test(statusText)) resolvePromise({ exitStatus: 'running', statusText, aborted, exited });
    };
    for (const stream of [stdout, stderr, statusOut]) stream.on('close', onPipeClosed);
    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    // A dead launcher makes these streams error (EPIPE, ECONNRESET); the exit status tells the story.
    for (const stream of [stdout, stderr, specIn, statusOut]) stream.on('error', () => undefined);
    stdout.on('data', (chunk: Buffer) => spec.onStdout?.(chunk));
    stderr.on('data', (chunk: Buffer) => spec.onStderr?.(chunk));
    statusOut.setEncoding('utf8');
    statusOut.on('data', (text: string) => {
      statusText += text;
    });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new TsbuildError('SANDBOX', `cannot start sandbox launcher ${launcher}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      resolvePromise({ exitStatus: sig ? `signal ${sig}` : `exit ${code}`, statusText, aborted, exited });
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    specIn.end(input);
  });
}
