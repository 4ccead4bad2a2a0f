/**
 * Small ports of Go standard-library behaviour the BuildKit parser depends on. Byte-for-byte
 * conformance needs Go's notion of whitespace and quoting, which differ from JavaScript's
 * (`\s` includes U+FEFF but not U+0085; JSON quoting is not strconv.Quote).
 */

/** Go's unicode.IsSpace. */
export function isSpace(cp: number): boolean {
  switch (cp) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200a;
  }
}

/** strings.TrimLeftFunc(s, unicode.IsSpace) */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i) ?? 0;
    if (!isSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return s.slice(i);
}

/** strings.TrimRightFunc(s, unicode.IsSpace) */
export function trimRightSpace(s: string): string {
  let end = s.length;
  while (end > 0) {
    const c = s.charCodeAt(end - 1);
    // Every Go space is in the BMP, so a trailing low surrogate is never a space.
    if (!isSpace(c)) break;
    end--;
  }
  return s.slice(0, end);
}

/** strings.TrimSpace */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function isPrint(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x20 && cp < 0x7f;
  if (cp <= 0xff) return cp >= 0xa1 && cp !== 0xad;
  return printable.test(String.fromCodePoint(cp));
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') { out += '\\' + ch; continue; }
    if (isPrint(cp)) { out += ch; continue; }
    switch (cp) {
      case 0x07: out += '\\a'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x0b: out += '\\v'; break;
      default:
        if (cp < 0x20 || cp === 0x7f) out += '\\x' + hex(cp, 2);
        else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd';
        else if (cp < 0x10000) out += '\\u' + hex(cp, 4);
        else out += '\\U' + hex(cp, 8);
    }
  }
  return out + '"';
}

const units: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

/**
 * Go's time.ParseDuration, returning nanoseconds (as a float; precision beyond 2^53 ns ≈ 104 days
 * is irrelevant for healthcheck intervals). Throws Error with Go's message on bad input.
 */
export function parseGoDuration(input: string): number {
  const bad = (): Error => new Error(`time: invalid duration "${input}"`);
  let s = input;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const intPart = m?.[1] ?? '';
    const fracPart = m?.[2];
    if (m === null || (intPart === '' && (fracPart === undefined || fracPart === ''))) throw bad();
    s = s.slice(m[0].length);
    const u = /^[^\d.]+/.exec(s);
    if (u === null) throw new Error(`time: missing unit in duration "${input}"`);
    const mult = units[u[0]];
    if (mult === undefined) throw new Error(`time: unknown unit "${u[0]}" in duration "${input}"`);
    s = s.slice(u[0].length);
    total += Number(intPart === '' ? '0' : intPart) * mult;
    if (fracPart !== undefined && fracPart !== '') total += Number('0.' + fracPart) * mult;
  }
  if (total > 9223372036854775807) throw bad();
  return neg ? -total : total;
}
