/**
 * The subset of Go's text/template that `docker inspect --format` users rely on: `{{.A.B}}`, `{{.}}`,
 * `{{json X}}`, `{{index X 0}}`, `{{join X ","}}`, `{{len X}}`, `{{upper X}}`/`{{lower X}}`, `{{println X}}`,
 * pipes (`{{.Config.Env | json}}`), `{{range X}}…{{end}}`, `{{if X}}…{{else}}…{{end}}`, `{{-`/`-}}` trimming.
 * Values print as Go's `%v` does (`[a b]` for lists, `map[k:v]` for objects). Like docker's formatter,
 * the two-character escapes `\n` and `\t` in template text become a newline and a tab.
 */
import { TsbuildError } from '../../util/errors.js';

type Node = { kind: 'text'; text: string } | { kind: 'action'; pipe: string } | { kind: 'range' | 'if'; pipe: string; body: Node[]; alt: Node[] };

export function renderTemplate(template: string, data: unknown): string {
  const tokens = tokenize(template);
  let pos = 0;
  const parse = (stopAt: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++] as { text?: string; action?: string };
      if (t.text !== undefined) {
        nodes.push({ kind: 'text', text: t.text });
        continue;
      }
      const action = t.action ?? '';
      const word = /^(\w+)\b\s*(.*)$/s.exec(action);
      const kw = word?.[1] ?? '';
      if (stopAt.includes(kw) && (kw === 'end' || kw === 'else')) return { nodes, stop: kw };
      if (kw === 'range' || kw === 'if') {
        const body = parse(['end', 'else']);
        const alt = body.stop === 'else' ? parse(['end']).nodes : [];
        nodes.push({ kind: kw, pipe: word?.[2] ?? '', body: body.nodes, alt });
      } else if (kw === 'end' || kw === 'else') {
        throw templateError(`unexpected {{${kw}}}`);
      } else nodes.push({ kind: 'action', pipe: action });
    }
    if (stopAt.length > 0) throw templateError('unexpected EOF: missing {{end}}');
    return { nodes, stop: '' };
  };
  return exec(parse([]).nodes, data);
}

function tokenize(template: string): { text?: string; action?: string }[] {
  const out: { text?: string; action?: string }[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    let text = unescape(template.slice(last, m.index));
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] !== undefined) text = text.replace(/\s+$/, '');
    if (text !== '') out.push({ text });
    out.push({ action: (m[2] ?? '').trim() });
    trimNext = m[3] !== undefined;
    last = re.lastIndex;
  }
  let tail = unescape(template.slice(last));
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail.includes('{{')) throw templateError('unclosed action');
  if (tail !== '') out.push({ text: tail });
  return out;
}

function unescape(text: string): string {
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

function exec(nodes: Node[], dot: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'action') out += printValue(evalPipe(n.pipe, dot));
    else {
      const v = evalPipe(n.pipe, dot);
      if (n.kind === 'if') out += exec(truthy(v) ? n.body : n.alt, dot);
      else {
        const items = Array.isArray(v) ? (v as unknown[]) : isObject(v) ? Object.keys(v).sort().map((k) => v[k]) : [];
        out += items.length > 0 ? items.map((item) => exec(n.body, item)).join('') : exec(n.alt, dot);
      }
    }
  }
  return out;
}

function evalPipe(pipe: string, dot: unknown): unknown {
  let prev: { value: unknown } | undefined;
  for (const cmd of pipe.split('|').map((c) => c.trim())) {
    const words = splitWords(cmd);
    if (words.length === 0) throw templateError(`missing value in {{${pipe}}}`);
    const args = words.slice(1).map((w) => operand(w, dot));
    if (prev !== undefined) args.push(prev.value);
    const head = words[0] as string;
    prev = { value: FUNCS[head] !== undefined ? FUNCS[head](args) : args.length === 0 ? operand(head, dot) : fail(`can't give argument to non-function ${head}`) };
  }
  return prev?.value;
}

function splitWords(cmd: string): string[] {
  return cmd.match(/"(?:[^"\\]|\\.)*"|`[^`]*`|[^\s]+/g) ?? [];
}

function operand(word: string, dot: unknown): unknown {
  if (word === '.') return dot;
  if (word.startsWith('.')) {
    let v: unknown = dot;
    for (const key of word.slice(1).split('.')) {
      if (!isObject(v)) throw templateError(`can't evaluate field ${key} in ${word}`);
      if (!(key in v)) throw templateError(`can't evaluate field ${key}: no such field`);
      v = v[key];
    }
    return v;
  }
  if (word.startsWith('"')) return JSON.parse(word) as string;
  if (word.startsWith('`')) return word.slice(1, -1);
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  if (FUNCS[word] !== undefined) return FUNCS[word]([]);
  return fail(`function "${word}" not defined`);
}

const FUNCS: Record<string, (args: unknown[]) => unknown> = {
  json: ([v]) => JSON.stringify(v ?? null),
  index: ([v, ...keys]) => keys.reduce<unknown>((acc, k) => (Array.isArray(acc) ? (acc[Number(k)] ?? fail(`index out of range: ${String(k)}`)) : isObject(acc) ? acc[String(k)] : fail('cannot index')), v),
  join: ([v, sep]) => (Array.isArray(v) ? v.map(printValue).join(typeof sep === 'string' ? sep : '') : fail('join needs a list')),
  len: ([v]) => (Array.isArray(v) || typeof v === 'string' ? v.length : isObject(v) ? Object.keys(v).length : fail('len of a non-collection')),
  upper: ([v]) => printValue(v).toUpperCase(),
  lower: ([v]) => printValue(v).toLowerCase(),
  println: (args) => `${args.map(printValue).join(' ')}\n`,
  print: (args) => args.map(printValue).join(''),
};

/** Go's `%v`. */
export function printValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  if (isObject(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${printValue(v[k])}`).join(' ')}]`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(message: string): never {
  throw templateError(message);
}

function templateError(message: string): TsbuildError {
  return new TsbuildError('USAGE', `template: ${message}`, { hint: 'supported: {{.Field}}, json, index, join, len, upper, lower, println, range, if/else' });
}
