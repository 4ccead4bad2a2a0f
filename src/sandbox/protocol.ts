/**
 * The node ↔ launcher protocol. In (fd 3): NUL-terminated tokens, each key followed by a fixed
 * number of values, so the C side needs no JSON parser and nothing needs escaping. Out (fd 4):
 * lines "E <message>" (setup failure), "A <signal>" (the launcher itself was sent SIGINT/SIGTERM/
 * SIGHUP and stopped the step) and one final "X <exitCode> <signalNumber> <oomKilled>".
 */
import { TsbuildError } from '../util/errors.js';
import type { SandboxSpec } from './types.js';

/** Paths the run prepared in workRoot for files bind-mounted over /etc/hosts and /etc/resolv.conf. */
export interface PreparedFiles {
  hostsPath: string;
  resolvPath: string;
}

export function encodeSpec(spec: SandboxSpec, workRoot: string, files: PreparedFiles): Buffer {
  const tokens: string[] = ['workroot', workRoot, 'ppid', String(process.pid)];
  const add = (...t: string[]): void => {
    tokens.push(...t);
  };
  for (const lower of spec.lowerDirs) add('lower', lower);
  for (const arg of spec.args) add('arg', arg);
  for (const env of spec.env) add('env', env);
  add('cwd', spec.cwd, 'user', spec.user, 'hostname', spec.hostname, 'network', spec.network);
  add('bind', files.hostsPath, '/etc/hosts', '0', 'bind', files.resolvPath, '/etc/resolv.conf', '0');
  for (const m of spec.mounts) {
    if (m.type === 'bind') add('bind', m.source, m.target, m.readonly ? '1' : '0');
    else if (m.type === 'overlay') add('cow', m.source, m.target);
    else if (m.type === 'layers') add('layers', m.readonly ? '1' : '0', m.target, String(m.sources.length), ...m.sources);
    else add('tmpfs', m.target, String(m.sizeBytes ?? 0));
  }
  const limits = spec.limits ?? {};
  if (limits.memoryBytes !== undefined) add('memory', String(wholeNumber('memory', limits.memoryBytes)));
  if (limits.pids !== undefined) add('pids', String(wholeNumber('pids', limits.pids)));
  if (limits.cpus !== undefined) add('cpuquota', String(wholeNumber('cpus', Math.round(limits.cpus * 100_000))));
  for (const t of tokens) {
    // Named, never quoted: the value may be a secret (RUN --mount=type=secret,env=...).
    if (t.includes('\0')) throw new TsbuildError('SANDBOX', `sandbox spec value contains a NUL byte: ${describeToken(t)}`);
  }
  return withLength(Buffer.from(tokens.map((t) => `${t}\0`).join(''), 'utf8'));
}

/**
 * The spec as the launcher reads it: its byte count, NUL, then the tokens. The launcher stops at
 * the count instead of waiting for EOF, which node sends only when its event loop gets round to
 * closing the pipe (12 ms into a RUN step, measured).
 */
export function withLength(tokens: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${tokens.length}\0`), tokens]);
}

function wholeNumber(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new TsbuildError('SANDBOX', `invalid ${what} limit: ${n}`);
  return n;
}

export interface LauncherStatus {
  errors: string[];
  /** The signal that interrupted the launcher (e.g. a terminal's Ctrl-C to the process group). */
  interrupted?: number;
  exit?: { code: number; signal: number; oomKilled: boolean };
}

export function parseStatus(text: string): LauncherStatus {
  const status: LauncherStatus = { errors: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith('E ')) status.errors.push(line.slice(2));
    const a = /^A (\d+)$/.exec(line);
    if (a) status.interrupted = Number(a[1]);
    const m = /^X (\d+) (\d+) ([01])$/.exec(line);
    if (m) status.exit = { code: Number(m[1]), signal: Number(m[2]), oomKilled: m[3] === '1' };
  }
  return status;
}

/** What a refused token was, without its value: `KEY=…` for env entries, else its length. */
function describeToken(token: string): string {
  const eq = token.indexOf('=');
  return eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(token.slice(0, eq)) ? `the value of ${token.slice(0, eq)}` : `a ${token.length}-character value`;
}
