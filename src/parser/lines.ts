/**
 * The logical-line loop of BuildKit's parser.Parse: directives, comments, continuation lines,
 * heredoc bodies and line numbers. Produces AST nodes.
 */
import { type AstNode, AstError, canContainHeredoc, newNodeFromLine } from './ast.js';
import { trimLeftSpace } from './gostr.js';
import { DockerfileError } from './errors.js';
import { HeredocError, heredocsFromLine } from './heredoc.js';
import { MAX_DOCKERFILE_BYTES, MAX_INSTRUCTIONS, dockerfileTooLarge } from './limits.js';
import { columnFor } from './locate.js';

export interface Directives {
  syntax?: string;
  escape: '\\' | '`';
  check?: string;
}

export interface AstResult {
  nodes: AstNode[];
  directives: Directives;
}

// BuildKit's `^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$`, split in two:
// the lazy value followed by a blank run backtracks quadratically on long blank runs in JavaScript.
const reDirectiveKey = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=/;
const isDirectiveBlank = (c: string): boolean => c === '\t' || c === '\n' || c === '\f' || c === '\r' || c === ' ';

function matchDirective(line: string): [string, string] | null {
  const m = reDirectiveKey.exec(line);
  if (m === null) return null;
  const rest = line.slice(m[0].length);
  if (rest === '' || rest.includes('\n')) return null;
  let end = rest.length;
  while (end > 0 && isDirectiveBlank(rest[end - 1] as string)) end--;
  let start = 0;
  while (start < end && isDirectiveBlank(rest[start] as string)) start++;
  // All blank: the greedy leading blank run gives its last character back to `(.+?)`.
  return [m[1] as string, end === 0 ? rest.slice(-1) : rest.slice(start, end)];
}

/** Trailing CR/LF removed without a regex (`[\r\n]+$` is quadratic on long CR runs). */
export function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === 0x0a || s.charCodeAt(end - 1) === 0x0d)) end--;
  return end === s.length ? s : s.slice(0, end);
}

class DirectiveState {
  done = false;
  readonly seen = new Set<string>();
  readonly values: Directives = { escape: '\\' };
  continuation = /([^\\])\\[ \t]*$|^\\[ \t]*$/;

  /** Returns true when the line was a directive. */
  parseLine(line: string): boolean {
    if (this.done) return false;
    const m = matchDirective(line);
    const key = m?.[0].toLowerCase();
    if (m === null || key === undefined || !['syntax', 'escape', 'check'].includes(key)) {
      this.done = true;
      return false;
    }
    if (this.seen.has(key)) throw new Error(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    const value = m[1];
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') throw new Error(`invalid escape token '${value}' does not match \` or \\`);
      this.values.escape = value;
      const e = value === '`' ? '`' : '\\\\';
      this.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
    } else if (key === 'syntax') {
      this.values.syntax = value;
    } else {
      this.values.check = value;
    }
    return true;
  }
}

/** Split keeping line terminators, like BuildKit's scanLines. */
function scanLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf('\n', start);
    if (i < 0) break;
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

const isComment = (s: string): boolean => trimLeftSpace(s).startsWith('#');
const isEmptyContinuationLine = (s: string): boolean => trimLeftSpace(trimNewline(s)).length === 0;

export function parseAst(text: string, file = 'Dockerfile'): AstResult {
  // Text handed over in memory (the library's dockerfileText) gets the same bound as a file read.
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_DOCKERFILE_BYTES) throw dockerfileTooLarge(`Dockerfile ${file}`, { size });
  const d = new DirectiveState();
  const lines = scanLines(text);
  const nodes: AstNode[] = [];
  let idx = 0;
  let currentLine = 0;
  const fail = (msg: string, line: number, endLine = line, cause?: unknown): DockerfileError =>
    new DockerfileError(msg, {
      file, line, endLine, cause, column: columnFor(msg, trimNewline(lines[line - 1] ?? '')),
      excerpt: lines.slice(Math.max(0, line - 1), endLine).join('').replace(/\n$/, ''),
    });

  const processLine = (raw: string, stripLeft: boolean): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    try {
      d.parseLine(token);
    } catch (err) {
      throw fail((err as Error).message, currentLine + 1);
    }
    return isComment(token) ? '' : token;
  };
  const trimContinuation = (line: string): [string, boolean] => {
    if (d.continuation.test(line)) return [line.replace(d.continuation, '$1'), false];
    return [line, true];
  };

  while (idx < lines.length) {
    let raw = lines[idx++] as string;
    if (currentLine === 0 && raw.startsWith('\ufeff')) raw = raw.slice(1);
    const token = processLine(raw, true);
    currentLine++;
    const startLine = currentLine;
    let [line, isEnd] = trimContinuation(token);
    if (isEnd && line === '') continue;
    if (nodes.length === MAX_INSTRUCTIONS) {
      throw fail(`more than ${MAX_INSTRUCTIONS} instructions: tsbuild refuses a Dockerfile this long (its parse alone would take gigabytes)`, startLine);
    }
    while (!isEnd && idx < lines.length) {
      const next = lines[idx++] as string;
      const t = processLine(next, false);
      currentLine++;
      if (isComment(next)) continue;
      if (isEmptyContinuationLine(t)) continue;
      let piece: string;
      [piece, isEnd] = trimContinuation(t);
      line += piece;
    }
    let node: AstNode;
    try {
      node = newNodeFromLine(line, { escapeToken: d.values.escape });
    } catch (err) {
      if (err instanceof AstError) throw fail(err.message, startLine, currentLine, err);
      throw err;
    }
    if (canContainHeredoc(node) && line.includes('<<')) {
      let docs;
      try {
        docs = heredocsFromLine(line);
      } catch (err) {
        if (err instanceof HeredocError) throw fail(err.message, startLine, currentLine, err);
        throw err;
      }
      const target = node.sub ?? node;
      for (const h of docs) {
        let content = '';
        let terminated = false;
        while (idx < lines.length) {
          const body = lines[idx++] as string;
          currentLine++;
          let candidate = trimNewline(body);
          if (h.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === h.name) { terminated = true; break; }
          content += body;
        }
        if (!terminated) throw fail('unterminated heredoc', startLine, currentLine);
        target.heredocs.push({ ...h, content });
      }
      if (target !== node) node.heredocs = target.heredocs;
    }
    node.startLine = startLine;
    node.endLine = currentLine;
    nodes.push(node);
  }
  if (nodes.length === 0) {
    throw new DockerfileError('file with no instructions', {
      file, line: 1, column: 1, excerpt: trimNewline(lines[0] ?? ''),
      hint: 'a Dockerfile needs at least a FROM instruction',
    });
  }
  return { nodes, directives: { ...d.values } };
}

