/** A parsed `WWW-Authenticate` challenge (RFC 7235), e.g. `Bearer realm="…",service="…"`. */
export interface Challenge {
  /** Lower-cased: 'basic', 'bearer', or whatever else a server sends. */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse the first challenge of a header. Registries send one; when several are sent we prefer
 * Bearer, as docker does.
 */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (header === undefined || header.trim() === '') return [];
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  let current: Challenge | undefined;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === ',')) i++;
    const tokenStart = i;
    while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i] ?? '')) i++;
    const token = s.slice(tokenStart, i);
    if (token === '') break;
    let j = i;
    while (j < s.length && s[j] === ' ') j++;
    if (s[j] === '=') {
      i = j + 1;
      while (i < s.length && s[i] === ' ') i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
        value = s.slice(vs, i);
      }
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      i = j;
    }
  }
  return out;
}

export function pickChallenge(header: string | undefined): Challenge | undefined {
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic') ?? all[0];
}
