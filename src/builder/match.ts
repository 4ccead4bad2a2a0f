/**
 * Go `filepath.Match` for one path component: `*`, `?`, `[...]` (with `^`/`!` negation and
 * ranges) and `\` escapes. COPY/ADD wildcards match component by component, as BuildKit does.
 */
import { patternRegExp } from '../util/regex.js';

export function hasWildcard(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

const cache = new Map<string, RegExp>();

export function matchComponent(pattern: string, name: string): boolean {
  let re = cache.get(pattern);
  if (re === undefined) {
    re = patternRegExp(`^${componentToRegex(pattern)}$`, 's');
    cache.set(pattern, re);
  }
  return re.test(name);
}

function componentToRegex(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRegex(pattern[++i] as string);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^') || body.startsWith('!');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\]\\]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else out += escapeRegex(c);
  }
  return out;
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
}
