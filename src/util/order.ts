/**
 * Go's string order: by UTF-8 bytes, which is Unicode code point order. The places that must list
 * things as BuildKit or Go's encoders do (EXPOSE words, JSON map keys, PAX xattr records, cache-key
 * fields) sort with this. JavaScript's `<` compares UTF-16 code units, which agrees except between
 * a surrogate pair (U+10000 and up) and U+E000-U+FFFF; the remap below puts surrogates after those.
 */
export function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Entries of [key, value] pairs by key, in `byCodePoint` order. */
export function byKey<T>([a]: readonly [string, T], [b]: readonly [string, T]): number {
  return byCodePoint(a, b);
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
