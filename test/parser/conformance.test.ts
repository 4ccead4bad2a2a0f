import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasConformanceData, runAll } from '../../conformance/checks.js';

// The shared data lives beside the checkout (…/main/../shared); absent in a bare clone.
const shared = fileURLToPath(new URL('../../../shared', import.meta.url));

describe.runIf(hasConformanceData(shared))('BuildKit conformance', () => {
  for (const suite of runAll(shared)) {
    it(`${suite.suite} (${suite.total} cases)`, () => {
      expect(suite.total).toBeGreaterThan(0);
      expect(suite.failures.map((f) => `${f.name}\n${f.detail}`)).toEqual([]);
    });
  }
});

it('conformance data presence is detected', () => {
  expect(hasConformanceData('/nonexistent-dir-for-test')).toBe(false);
});
