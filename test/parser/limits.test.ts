/**
 * The Dockerfile size bounds (parser/limits.ts): text over 16 MiB, or more than 100,000
 * instructions, is a DockerfileError rather than a parse that fills V8's heap.
 */
import { describe, expect, it } from 'vitest';
import { DockerfileError, MAX_DOCKERFILE_BYTES, MAX_INSTRUCTIONS, parseDockerfile } from '../../src/parser/index.js';

function parseError(text: string): DockerfileError {
  try {
    parseDockerfile(text, { file: 'big.Dockerfile' });
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error('parsed without an error');
}

describe('Dockerfile size limits', () => {
  it('text over 16 MiB (counted in UTF-8 bytes) is refused before it is parsed', () => {
    const over = `FROM scratch\n#${'x'.repeat(MAX_DOCKERFILE_BYTES)}\n`;
    const e = parseError(over);
    expect(e.code).toBe('DOCKERFILE');
    expect(e.message).toBe('Dockerfile big.Dockerfile is larger than the 16 MiB a Dockerfile may have (16.0 MiB)');
    // Under the limit in UTF-16 code units, over it in bytes.
    const wide = `FROM scratch\n#${'é'.repeat(MAX_DOCKERFILE_BYTES / 2)}\n`;
    expect(wide.length).toBeLessThan(MAX_DOCKERFILE_BYTES);
    expect(parseError(wide).message).toMatch(/larger than the 16 MiB/);
    // Exactly at the limit parses.
    const at = `FROM scratch\n#${'x'.repeat(MAX_DOCKERFILE_BYTES - 15)}\n`;
    expect(Buffer.byteLength(at)).toBe(MAX_DOCKERFILE_BYTES);
    expect(parseDockerfile(at).stages).toHaveLength(1);
  });

  it(`${MAX_INSTRUCTIONS} instructions parse; one more is an error at its line`, () => {
    const body = 'ENV A=1\n'.repeat(MAX_INSTRUCTIONS - 1);
    expect(parseDockerfile(`FROM scratch\n${body}`).stages[0]?.instructions).toHaveLength(MAX_INSTRUCTIONS - 1);
    const e = parseError(`FROM scratch\n${body}# a comment is no instruction\nUSER one-too-many\n`);
    expect(e.message).toBe(`more than ${MAX_INSTRUCTIONS} instructions: tsbuild refuses a Dockerfile this long (its parse alone would take gigabytes)`);
    expect(e.line).toBe(MAX_INSTRUCTIONS + 2);
    expect(e.excerpt).toBe('USER one-too-many');
  });
});
