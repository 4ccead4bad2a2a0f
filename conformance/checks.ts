/**
 * BuildKit conformance checks over the shared data directory (see shared/conformance/README.md).
 * Used by conformance/run.ts (CLI) and test/parser/conformance.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpBuildkit } from '../src/parser/dump.js';
import { parseAst } from '../src/parser/lines.js';
import { parseDockerfile } from '../src/parser/parse.js';
import { expandWord, expandWords } from '../src/parser/shell/index.js';

export interface CaseFailure {
  name: string;
  detail: string;
}

export interface SuiteResult {
  suite: string;
  total: number;
  failures: CaseFailure[];
}

const base = (shared: string): string => join(shared, 'conformance', 'buildkit-parser', 'frontend', 'dockerfile');

export function hasConformanceData(shared: string): boolean {
  return existsSync(base(shared));
}

function lineDiff(expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] !== a[i]) out.push(`  line ${i + 1}:\n    - ${JSON.stringify(e[i])}\n    + ${JSON.stringify(a[i])}`);
  }
  return out.join('\n');
}

export function checkDumps(shared: string): SuiteResult {
  const dir = join(base(shared), 'parser', 'testfiles');
  const failures: CaseFailure[] = [];
  const cases = readdirSync(dir).sort();
  for (const name of cases) {
    const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
    const expected = readFileSync(join(dir, name, 'result'), 'utf8');
    let actual: string;
    try {
      actual = dumpBuildkit(text);
    } catch (err) {
      failures.push({ name, detail: `threw: ${(err as Error).message}` });
      continue;
    }
    if (actual !== expected) failures.push({ name, detail: lineDiff(expected, actual) });
  }
  return { suite: 'parser/testfiles (dump)', total: cases.length, failures };
}

export function checkNegatives(shared: string): SuiteResult {
  const dir = join(base(shared), 'parser', 'testfiles-negative');
  const failures: CaseFailure[] = [];
  const cases = readdirSync(dir).sort();
  for (const name of cases) {
    const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
    let rejected = false;
    try {
      dumpBuildkit(text);
      parseDockerfile(text);
    } catch {
      rejected = true;
    }
    if (!rejected) failures.push({ name, detail: 'parsed without error' });
  }
  return { suite: 'parser/testfiles-negative', total: cases.length, failures };
}

export function checkLines(shared: string): SuiteResult {
  const text = readFileSync(join(base(shared), 'parser', 'testfile-line', 'Dockerfile'), 'utf8');
  const expected: [number, number][] = [[5, 5], [11, 12], [17, 31]];
  const failures: CaseFailure[] = [];
  try {
    const got = parseAst(text).nodes.map((n) => [n.startLine, n.endLine]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      failures.push({ name: 'testfile-line', detail: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}` });
    }
  } catch (err) {
    failures.push({ name: 'testfile-line', detail: `threw: ${(err as Error).message}` });
  }
  return { suite: 'parser/testfile-line', total: 1, failures };
}

export function checkEnvVars(shared: string): SuiteResult {
  const env = { PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' };
  const failures: CaseFailure[] = [];
  let total = 0;
  const lines = readFileSync(join(base(shared), 'shell', 'envVarTest'), 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.startsWith('#') || line.trim() === '') return;
    const [platform, source = '', expected = ''] = line.split('|').map((f) => f.trim());
    if (platform !== 'A' && platform !== 'U') return;
    total++;
    let got: string;
    try {
      got = expandWord(source, env);
    } catch {
      got = 'error';
    }
    if (got !== expected) failures.push({ name: `envVarTest:${i + 1} ${source}`, detail: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}` });
  });
  return { suite: 'shell/envVarTest', total, failures };
}

export function checkWords(shared: string): SuiteResult {
  const env: Record<string, string> = {};
  const failures: CaseFailure[] = [];
  let total = 0;
  const lines = readFileSync(join(base(shared), 'shell', 'wordsTest'), 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.startsWith('#') || line.trim() === '') return;
    if (line.startsWith('ENV ')) {
      const kv = line.slice(4).trimStart();
      const eq = kv.indexOf('=');
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
      return;
    }
    total++;
    const sep = line.indexOf('|');
    const input = line.slice(0, sep).trim();
    const expected = line.slice(sep + 1).trimStart();
    let got: string;
    try {
      got = expandWords(input, env).join(',');
    } catch {
      got = 'error';
    }
    if (got !== expected) failures.push({ name: `wordsTest:${i + 1} ${input}`, detail: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}` });
  });
  return { suite: 'shell/wordsTest', total, failures };
}

export function runAll(shared: string): SuiteResult[] {
  return [checkDumps(shared), checkNegatives(shared), checkLines(shared), checkEnvVars(shared), checkWords(shared)];
}
