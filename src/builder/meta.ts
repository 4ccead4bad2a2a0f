/**
 * Metadata instructions: pure edits of the image config (no layer). Values arrive already
 * expanded. Each returns the history `created_by` text BuildKit writes for it.
 */
import type { HealthConfig, ImageConfig } from '../image/index.js';
import { TsbuildError } from '../util/errors.js';
import { setEnv } from './state.js';

export function applyEnv(config: ImageConfig, pairs: { key: string; value: string }[]): string {
  for (const { key, value } of pairs) setEnv(config, key, value);
  return `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
}

export function applyLabel(config: ImageConfig, pairs: { key: string; value: string }[]): string {
  const cc = (config.config ??= {});
  cc.Labels ??= {};
  for (const { key, value } of pairs) cc.Labels[key] = value;
  return `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
}

export function applyExpose(config: ImageConfig, specs: string[]): string {
  const cc = (config.config ??= {});
  cc.ExposedPorts ??= {};
  const added = specs.flatMap(exposedPorts);
  for (const port of added) cc.ExposedPorts[port] = {};
  return `EXPOSE [${added.join(' ')}]`;
}

/** `[ip:][hostPort:]port[-end][/proto]` → `port/proto` for each port (proto lowercased, tcp by default). */
export function exposedPorts(spec: string): string[] {
  const slash = spec.lastIndexOf('/');
  const proto = slash >= 0 ? spec.slice(slash + 1).toLowerCase() : 'tcp';
  const rest = slash >= 0 ? spec.slice(0, slash) : spec;
  const container = rest.slice(rest.lastIndexOf(':') + 1);
  const m = /^(\d+)(?:-(\d+))?$/.exec(container);
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new TsbuildError('DOCKERFILE', `invalid proto: ${proto}`);
  const start = Number(m?.[1]);
  const end = m?.[2] !== undefined ? Number(m[2]) : start;
  // go-connections' ParsePortSpec words every bad port, range or 16-bit overflow the same way.
  if (m === null || start > 65535 || end > 65535 || end < start) throw new TsbuildError('DOCKERFILE', `invalid containerPort: ${container}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

export function applyVolume(config: ImageConfig, paths: string[]): string {
  const cc = (config.config ??= {});
  cc.Volumes ??= {};
  for (const p of paths) {
    if (p === '') throw new TsbuildError('DOCKERFILE', 'VOLUME specified can not be an empty string');
    cc.Volumes[p] = {};
  }
  return `VOLUME [${paths.join(' ')}]`;
}

export function applyUser(config: ImageConfig, user: string): string {
  (config.config ??= {}).User = user;
  return `USER ${user}`;
}

export function applyWorkdir(config: ImageConfig, dir: string): string {
  (config.config ??= {}).WorkingDir = dir;
  return `WORKDIR ${dir}`;
}

/** Exec-form arrays pass through; shell form wraps with the stage's SHELL. */
export function commandArgs(form: 'shell' | 'exec', command: string | string[], shell: string[]): string[] {
  return form === 'exec' && Array.isArray(command) ? command : [...shell, typeof command === 'string' ? command : command.join(' ')];
}

export function applyCmd(config: ImageConfig, args: string[]): string {
  const cc = (config.config ??= {});
  cc.Cmd = args;
  cc.ArgsEscaped = true;
  return `CMD ${goQuoteList(args)}`;
}

/** Setting ENTRYPOINT resets a CMD inherited from the base image (docker semantics). */
export function applyEntrypoint(config: ImageConfig, args: string[], cmdSetInStage: boolean): string {
  const cc = (config.config ??= {});
  cc.Entrypoint = args.length === 0 ? null : args;
  if (!cmdSetInStage) cc.Cmd = null;
  return `ENTRYPOINT ${goQuoteList(args)}`;
}

export function applyShell(config: ImageConfig, shell: string[]): string {
  (config.config ??= {}).Shell = shell;
  return `SHELL [${shell.join(' ')}]`;
}

/** Signal names moby's signal.ParseSignal knows on Linux (without the SIG prefix). */
const SIGNAL_NAMES = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
  'RTMIN', 'RTMAX', ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`), ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/** STOPSIGNAL is checked as BuildKit does: a non-zero number, or a known name with or without SIG. */
export function applyStopSignal(config: ImageConfig, signal: string): string {
  const number = /^[+-]?\d+$/.test(signal) ? Number(signal) : undefined;
  const known = number !== undefined ? number !== 0 : SIGNAL_NAMES.has(signal.toUpperCase().replace(/^SIG/, ''));
  if (!known) throw new TsbuildError('DOCKERFILE', `Invalid signal: ${signal}`);
  (config.config ??= {}).StopSignal = signal;
  return `STOPSIGNAL ${signal}`;
}

/** ONBUILD only records the trigger; BuildKit writes no history entry for it. */
export function applyOnbuild(config: ImageConfig, expression: string): void {
  const cc = (config.config ??= {});
  cc.OnBuild = [...(cc.OnBuild ?? []), expression];
}

export function applyMaintainer(config: ImageConfig, name: string): string {
  config.author = name;
  return `MAINTAINER ${name}`;
}

export function applyHealthcheck(config: ImageConfig, health: HealthConfig): string {
  (config.config ??= {}).Healthcheck = health;
  const d = (ns: number | undefined): string => formatGoDuration(ns ?? 0);
  return `HEALTHCHECK {Test:[${(health.Test ?? []).join(' ')}] Interval:${d(health.Interval)} Timeout:${d(health.Timeout)} StartPeriod:${d(health.StartPeriod)} StartInterval:${d(health.StartInterval)} Retries:${health.Retries ?? 0}}`;
}

/** Parses Go durations like `30s`, `1m30s`, `500ms` into nanoseconds. */
export function parseGoDuration(text: string): number {
  // Micro as Go spells it: us, U+00B5 (micro sign) and U+03BC (Greek mu); escaped so the bundle stays ASCII.
  const re = /(\d+(?:\.\d+)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, '\u03bcs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * (unit[m[2] as string] ?? 0);
    consumed += m[0].length;
  }
  if (text === '0') return 0;
  if (consumed !== text.length || text.length === 0) throw new RangeError(`invalid duration ${JSON.stringify(text)}`);
  return Math.round(total);
}

export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const h = Math.floor(ns / 3600e9);
  const m = Math.floor((ns % 3600e9) / 60e9);
  const s = (ns % 60e9) / 1e9;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}

/** Go's `%q` of a []string: `["a" "b"]`. */
export function goQuoteList(items: string[]): string {
  return `[${items.map((i) => JSON.stringify(i)).join(' ')}]`;
}
