/**
 * Shell wildcard patterns for ${V#p} ${V%p} ${V/p/r}, ported from BuildKit's
 * convertShellPatternToRegex: `*` and `?` are wildcards, no bracket expressions, `\` escapes.
 */
export class PatternError extends Error {}

type Item = { kind: 'char'; cp: string } | { kind: 'any' } | { kind: 'star' };

/**
 * Parse a shell pattern (BuildKit's convertShellPatternToRegex rules) into items. Matching is done
 * by a small Pike VM below, not a JavaScript RegExp: `${V/*a*a*a*b/}` on a long value backtracks
 * exponentially in a backtracking engine, where Go's RE2 (BuildKit) stays linear.
 */
function compile(pattern: string): Item[] {
  const cps = Array.from(pattern);
  const items: Item[] = [];
  for (let i = 0; i < cps.length; i++) {
    const tok = cps[i] as string;
    if (tok === '*') { items.push({ kind: 'star' }); continue; }
    if (tok === '?') { items.push({ kind: 'any' }); continue; }
    if (tok === '\\') {
      const next = cps[i + 1];
      // } and / inside ${} need escaping for the lexer, but the escape is not part of the pattern.
      if (next === '}' || next === '/') continue;
      i++;
      if (next !== '*' && next !== '?' && next !== '\\') throw new PatternError(`invalid escape '\\${next ?? '\uFFFD'}'`);
      items.push({ kind: 'char', cp: next });
      continue;
    }
    items.push({ kind: 'char', cp: tok });
  }
  return items;
}

/** Thread state: item index; `-(i+1)` = "inside star i, about to consume". */
type Thread = { pc: number; start: number };

/**
 * Leftmost-first match (Perl/RE2 preference order, `*` greedy or lazy) of `items` in `text`
 * (code points) searching from `from`; anchored = the match must start at `from`. O(n·m).
 */
function find(items: Item[], text: string[], from: number, anchored: boolean, greedy: boolean): [number, number] | undefined {
  const k = items.length;
  let clist: Thread[] = [];
  let found: [number, number] | undefined;
  const add = (list: Thread[], seen: Set<number>, pc: number, start: number): void => {
    if (seen.has(pc)) return;
    seen.add(pc);
    if (pc >= 0 && pc < k && (items[pc] as Item).kind === 'star') {
      if (greedy) { add(list, seen, -(pc + 1), start); add(list, seen, pc + 1, start); }
      else { add(list, seen, pc + 1, start); add(list, seen, -(pc + 1), start); }
      return;
    }
    list.push({ pc, start });
  };
  let seen = new Set<number>();
  for (let pos = from; ; pos++) {
    if (found === undefined && (pos === from || !anchored)) add(clist, seen, 0, pos);
    if (clist.length === 0) break;
    const c = pos < text.length ? (text[pos] as string) : undefined;
    const nlist: Thread[] = [];
    const nseen = new Set<number>();
    for (const t of clist) {
      if (t.pc === k) { found = [t.start, pos]; break; } // lower-priority threads are cut
      if (c === undefined) continue;
      // A star is Go's `.*`: any character but a newline, then back to the star.
      if (t.pc < 0) { if (c !== '\n') add(nlist, nseen, -t.pc - 1, t.start); continue; }
      const it = items[t.pc] as Item;
      if (it.kind === 'any' ? c !== '\n' : it.kind === 'char' && it.cp === c) add(nlist, nseen, t.pc + 1, t.start);
    }
    if (c === undefined) break;
    clist = nlist;
    seen = nseen;
  }
  return found;
}

/** Reverse a pattern by runes while keeping `\x` escapes in order (a\*c → c\*a). */
function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out: string[] = new Array<string>(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last;) {
    const tok = runes[i] as string;
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = runes[i + 1] as string;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (s: string): string => Array.from(s).reverse().join('');

export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const text = Array.from(value);
  const m = find(compile(pattern), text, 0, true, greedy);
  return m === undefined ? value : text.slice(m[1]).join('');
}

export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // The shortest rightmost match is the leftmost one of the reversed pattern in the reversed value.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/** Go's Regexp.Expand template rules for ReplaceAllString (the pattern has no capture groups). */
function expandTemplate(t: string, whole: string): string {
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i] as string;
    if (c !== '$') { out += c; continue; }
    if (t[i + 1] === '$') { out += '$'; i++; continue; }
    let name: string | undefined;
    let end = i;
    if (t[i + 1] === '{') {
      const close = t.indexOf('}', i + 2);
      const n = close < 0 ? '' : t.slice(i + 2, close);
      if (/^\w+$/.test(n)) { name = n; end = close; }
    } else {
      const m = /^\w+/.exec(t.slice(i + 1));
      if (m !== null) { name = m[0]; end = i + m[0].length; }
    }
    if (name === undefined) { out += '$'; continue; } // malformed: Go keeps the $ as text
    if (/^\d+$/.test(name) && Number(name) === 0) out += whole;
    i = end;
  }
  return out;
}

/** Go's Regexp.ReplaceAllString / first-match replace, on code points. */
export function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  const items = compile(pattern);
  const text = Array.from(value);
  if (!all) {
    const m = find(items, text, 0, false, true);
    return m === undefined ? value : text.slice(0, m[0]).join('') + replacement + text.slice(m[1]).join('');
  }
  let out = '';
  let lastEnd = 0;
  let search = 0;
  while (search <= text.length) {
    const m = find(items, text, search, false, true);
    if (m === undefined) break;
    out += text.slice(lastEnd, m[0]).join('');
    // No second replacement for an empty match right after a match (Go's rule).
    if (m[1] > lastEnd || m[0] === 0) out += expandTemplate(replacement, text.slice(m[0], m[1]).join(''));
    lastEnd = m[1];
    search = m[1] > search ? m[1] : search + 1;
  }
  return out + text.slice(lastEnd).join('');
}
