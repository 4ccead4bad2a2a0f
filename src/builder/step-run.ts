/**
 * RUN: argv from shell/exec form (and heredocs), env from config + ARGs, mounts validated on the
 * host side, then the sandbox runs it over the snapshot chain and the upper dir becomes the
 * layer (committed, then adopted as its own snapshot: no second extraction).
 */
import { mkdtempSync, rmdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { RunInstruction } from '../parser/types.js';
import { runInSandbox, type SandboxMount } from '../sandbox/index.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import type { Expander } from './expand.js';
import { heredocFileName } from './heredoc-name.js';
import { expandMounts, hostMounts, resolveMounts, type HostMounts } from './mount-host.js';
import { buildEnv, type StageState } from './state.js';
import { commitStepLayer, lowerDirsOf, shellOf, type Prepared, type StepDelta, type StepEnv } from './steps.js';

const PROXY_ARGS = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];
const OUTPUT_TAIL_LINES = 20;

function mib(bytes: number): string {
  return bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : `${bytes} bytes`;
}

function oomError(ins: RunInstruction, limit: number | undefined): TsbuildError {
  const where = `${ins.location.file}:${ins.location.startLine}`;
  const step = ins.original.replace(/\s+/g, ' ').trim();
  const what = limit !== undefined ? `exceeded the memory limit of ${mib(limit)} (--memory)` : 'ran out of memory';
  return new TsbuildError('RUN_FAILED', `step "${step}" (${where}) ${what} and was killed by the kernel OOM killer`, {
    hint: limit !== undefined ? 'raise the limit with --memory (e.g. -m 1g) or make the step use less memory' : 'free memory on the host or make the step use less',
  });
}

export function runArgv(ins: RunInstruction, state: StageState): { argv: string[]; files: { name: string; data: string }[] } {
  if (ins.form === 'exec') return { argv: ins.command, files: [] };
  const shell = shellOf(state);
  const only = ins.heredocs.length === 1 ? ins.heredocs[0] : undefined;
  if (only !== undefined && /^<<-?(["']?)[^\s]+\1\s*$/.test(ins.command.trim())) {
    // `RUN <<EOF`: the body is the script; a `#!` script is mounted as a file and executed.
    if (only.content.startsWith('#!')) {
      const file = heredocFileName(only.name);
      return { argv: [...shell, `/dev/pipes/${file}`], files: [{ name: file, data: only.content }] };
    }
    return { argv: [...shell, only.content], files: [] };
  }
  let cmd = ins.command;
  for (const h of ins.heredocs) cmd += `\n${h.rawContent}${h.name}`;
  return { argv: [...shell, cmd], files: [] };
}

/** BuildKit's history text: `|N K=V ... argv` when the stage declared ARGs. */
function runCommandString(argv: string[], state: StageState): string {
  const env = buildEnv(state);
  // buildEnv holds every ARG with a value (or the ENV shadowing it): only a valueless one is missing.
  const args = [...state.args.keys()].map((k) => `${k}=${env.get(k) ?? ''}`);
  return [...(args.length > 0 ? [`|${args.length}`, ...args] : []), ...argv].join(' ');
}

function runEnv(state: StageState, buildArgs: Record<string, string>): string[] {
  const env = buildEnv(state);
  for (const [k, v] of Object.entries(buildArgs)) {
    if (PROXY_ARGS.includes(k.toLowerCase())) {
      env.set(k.toLowerCase(), v);
      env.set(k.toUpperCase(), v);
    }
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

export async function prepareRun(ins: RunInstruction, state: StageState, env: StepEnv, x: Expander): Promise<Prepared> {
  const { argv, files } = runArgv(ins, state);
  const cc = state.config.config ?? {};
  const processEnv = runEnv(state, env.buildArgs);
  const network = ins.network === 'default' ? env.network : ins.network;
  const user = cc.User ?? '';
  const cwd = cc.WorkingDir !== undefined && cc.WorkingDir !== '' ? cc.WorkingDir : '/';
  const mounts = expandMounts(ins.mounts, x, cwd);
  const mountInputs = await resolveMounts(mounts, env);
  const proxyFree = processEnv.filter((e) => !PROXY_ARGS.includes((e.split('=')[0] ?? '').toLowerCase())).sort();
  const inputs = {
    parent: state.key,
    platform: `${env.platform.os}/${env.platform.architecture}`,
    instruction: `RUN ${JSON.stringify(argv)}`,
    env: proxyFree,
    extra: { user, cwd, network, mounts: JSON.stringify(mounts) },
    ...(Object.keys(mountInputs.keyed).length > 0 ? { mounts: mountInputs.keyed, mountFiles: mountInputs.files } : {}),
  };
  const apply = async (): Promise<StepDelta> => {
    const workRoot = mkdtempSync(join(env.store.tmpDir, 'run-'));
    const lowerDirs = lowerDirsOf(state, env.store);
    const output = new OutputTail();
    let host: HostMounts | undefined;
    try {
      host = await hostMounts(mounts, mountInputs, workRoot, env);
      const result = await runInSandbox(
        {
          lowerDirs,
          workRoot,
          args: argv,
          env: withMountEnv(processEnv, host.env),
          cwd,
          user,
          hostname: 'buildkitsandbox',
          network,
          mounts: [...host.mounts, ...(await pipesMount(files, workRoot))],
          limits: env.limits,
          onStdout: (c) => {
            output.push('stdout', c);
            env.onLog?.('stdout', c);
          },
          onStderr: (c) => {
            output.push('stderr', c);
            env.onLog?.('stderr', c);
          },
        },
        env.signal !== undefined ? { signal: env.signal } : {},
      );
      try {
        if (result.oomKilled) throw oomError(ins, env.limits.memoryBytes);
        if (result.exitCode !== 0) {
          const tail = output.last(OUTPUT_TAIL_LINES);
          throw new TsbuildError('RUN_FAILED', `process "${argv.join(' ')}" did not complete successfully: exit code: ${result.exitCode}`, {
            ...(tail.length > 0 ? { hint: `last output:\n  ${tail.join('\n  ')}` } : {}),
          });
        }
        return await commitStepLayer(env, result.upperDir, lowerDirs, `RUN ${runCommandString(argv, state)} # buildkit`);
      } finally {
        await result.dispose();
      }
    } finally {
      await host?.release();
      await removeWorkRoot(workRoot);
    }
  };
  return { state, inputs, apply };
}

/** A secret's env= replaces a variable of that name; SSH_AUTH_SOCK is set only when unset (BuildKit). */
function withMountEnv(env: string[], added: string[]): string[] {
  const name = (e: string): string => e.slice(0, Math.max(0, e.indexOf('=')));
  const have = new Set(env.map(name));
  const replace = new Set(added.filter((e) => name(e) !== 'SSH_AUTH_SOCK' || !have.has('SSH_AUTH_SOCK')).map(name));
  return [...env.filter((e) => !replace.has(name(e))), ...added.filter((e) => replace.has(name(e)))];
}

/** `RUN <<EOF` with a `#!` script: the heredoc files, read-only at /dev/pipes. */
async function pipesMount(files: { name: string; data: string }[], workRoot: string): Promise<SandboxMount[]> {
  if (files.length === 0) return [];
  const pipes = join(workRoot, 'pipes');
  await mkdir(pipes);
  for (const f of files) await writeFile(join(pipes, f.name), f.data, { mode: 0o755 });
  return [{ type: 'bind', source: pipes, target: '/dev/pipes', readonly: true }];
}

/** Usually empty by now (the sandbox cleared it): one rmdir; a tree left by a failure goes through the thread pool. */
async function removeWorkRoot(workRoot: string): Promise<void> {
  try {
    rmdirSync(workRoot);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') await rm(workRoot, { recursive: true, force: true });
  }
}

/**
 * The last lines a failed RUN printed, for its error. Whole lines per stream: a chunk may end in the
 * middle of a line or of a UTF-8 character, and stdout and stderr interleave.
 */
export class OutputTail {
  readonly #lines: string[] = [];
  readonly #open = new Map<string, { decoder: StringDecoder; rest: string }>();

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    let open = this.#open.get(stream);
    if (open === undefined) this.#open.set(stream, (open = { decoder: new StringDecoder('utf8'), rest: '' }));
    const lines = (open.rest + open.decoder.write(chunk)).split('\n');
    open.rest = lines.pop() ?? '';
    this.#lines.push(...lines);
    if (this.#lines.length > OUTPUT_TAIL_LINES * 4) this.#lines.splice(0, this.#lines.length - OUTPUT_TAIL_LINES);
  }

  /** The last `n` non-empty lines, unfinished ones included. */
  last(n: number): string[] {
    const unfinished = [...this.#open.values()].map((o) => o.rest + o.decoder.end());
    return [...this.#lines, ...unfinished].filter((l) => l !== '').slice(-n);
  }
}
