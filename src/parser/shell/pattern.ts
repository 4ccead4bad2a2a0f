/**
 * Shell wildcard patterns for ${V#p} ${V%p} ${V/p/r}, ported from BuildKit's
 * convertShellPatternToRegex: `*` and `?` are wildcards, no bracket expressions, `\` escapes.
 */
export class PatternError extends Error {}

const regexSpecial = new Set(['[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$']);

export function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const cps = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let i = 0; i < cps.length; i++) {
    let tok = cps[i] as string;
    if (tok === '*') { out += star; continue; }
    if (tok === '?') { out += '.'; continue; }
    if (tok === '\\') {
      const next = cps[i + 1];
      // } and / inside ${} need escaping for the lexer, but the escape is not part of the pattern.
      if (next === '}' || next === '/') continue;
      out += '\\';
      i++;
      tok = next ?? '';
      if (tok !== '*' && tok !== '?' && tok !== '\\') throw new PatternError(`invalid escape '\\${tok === '' ? '\uFFFD' : tok}'`);
    } else if (regexSpecial.has(tok)) {
      out += '\\';
    }
    out += tok;
  }
  return new RegExp(out, 'u');
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
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m === null ? value : value.slice(m.index + m[0].length);
}

export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // No regex finds the shortest rightmost match, so reverse both and search leftmost.
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

export function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  const re = shellPatternToRegex(pattern, true, false);
  if (!all) {
    const m = re.exec(value);
    return m === null ? value : value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
  }
  const g = new RegExp(re.source, 'gu');
  return value.replace(g, (whole) => expandTemplate(replacement, whole));
}
