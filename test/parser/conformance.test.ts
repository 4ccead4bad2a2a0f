import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasConformanceData, runAll } from '../../conformance/checks.js';

// BuildKit's parser test data (Apache-2.0, see its LICENSE and PROVENANCE.txt) is vendored under
// fixtures/conformance so the suite runs from any clone; .ci/run also runs the same checks against
// the shared copy beside the checkout (../shared), which may be newer.
const vendored = fileURLToPath(new URL('../../fixtures', import.meta.url));

describe('BuildKit conformance (vendored data)', () => {
  it('the vendored data is present', () => {
    expect(hasConformanceData(vendored)).toBe(true);
  });
  for (const suite of runAll(vendored)) {
    it(`${suite.suite} (${suite.total} cases)`, () => {
      expect(suite.total).toBeGreaterThan(0);
      expect(suite.failures.map((f) => `${f.name}\n${f.detail}`)).toEqual([]);
    });
  }
});

it('missing conformance data is detected', () => {
  expect(hasConformanceData('/nonexistent-dir-for-test')).toBe(false);
});
