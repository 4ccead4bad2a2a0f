/** Go's string order (UTF-8 bytes = code points), which JavaScript's `<` only nearly gives. */
import { describe, expect, it } from 'vitest';
import { byCodePoint, byKey } from '../../src/util/order.js';

/** What Go's sort.Strings does: compare the UTF-8 bytes. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

describe('byCodePoint', () => {
  it('orders as the UTF-8 bytes do, where UTF-16 code units would not', () => {
    // U+FF21 (fullwidth A) is below U+1F600 in code points and bytes, above its surrogates in UTF-16.
    const words = ['\u{1F600}', '\uFF21', 'b', 'a', 'ab', '', 'a\u{10000}', 'a\uE000', '\u00e9', 'Z'];
    const expected = [...words].sort(byUtf8);
    expect([...words].sort(byCodePoint)).toEqual(expected);
    expect([...words].sort()).not.toEqual(expected);
  });

  it('puts a prefix first and says equal only for equal strings', () => {
    expect(byCodePoint('80', '80/tcp')).toBeLessThan(0);
    expect(byCodePoint('80/tcp', '80')).toBeGreaterThan(0);
    expect(byCodePoint('x', 'x')).toBe(0);
  });

  it('byKey sorts entries by their keys', () => {
    const entries: [string, number][] = [['b', 1], ['\u{1F600}', 2], ['\uFF21', 3], ['a', 4]];
    expect(entries.sort(byKey).map(([, v]) => v)).toEqual([4, 1, 3, 2]);
  });
});
