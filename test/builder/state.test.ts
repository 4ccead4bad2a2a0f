import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import type { ImageConfig } from '../../src/image/index.js';
import { Expander } from '../../src/builder/expand.js';
import { cloneConfig } from '../../src/builder/state.js';

const location = { file: 'Dockerfile', startLine: 1, endLine: 1 };

describe('cloneConfig', () => {
  it('gives a copy whose every member a step edits in place can change without touching the original', () => {
    const original: ImageConfig = {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256Digest('a')] },
      history: [{ created_by: 'FROM' }],
      config: {
        Env: ['A=1'], Cmd: ['c'], Entrypoint: ['e'], OnBuild: ['RUN x'], Shell: ['/bin/sh', '-c'],
        Labels: { l: '1' }, ExposedPorts: { '80/tcp': {} }, Volumes: { '/v': {} },
        Healthcheck: { Test: ['CMD', 'true'], Retries: 1 }, User: 'u', WorkingDir: '/w',
      },
    };
    const snapshot = structuredClone(original);
    const copy = cloneConfig(original);
    const cc = copy.config ?? {};
    copy.rootfs.diff_ids.push(sha256Digest('b'));
    copy.history?.push({ created_by: 'ENV' });
    cc.Env?.push('B=2');
    cc.Cmd?.push('x');
    cc.Entrypoint?.push('x');
    cc.OnBuild?.push('x');
    cc.Shell?.push('x');
    (cc.Labels ?? {}).m = '2';
    (cc.ExposedPorts ?? {})['81/tcp'] = {};
    (cc.Volumes ?? {})['/w'] = {};
    cc.Healthcheck?.Test?.push('x');
    cc.User = 'v';
    copy.author = 'someone';
    expect(original).toEqual(snapshot);
    expect(copy.history?.[0]).toBe(original.history?.[0]); // written entries are shared
  });
});

describe('Expander', () => {
  it('makes the env only for a word that reads a variable', () => {
    let made = 0;
    const x = new Expander(() => {
      made++;
      return new Map([['A', '1']]);
    }, '\\', location);
    expect(x.word('"plain words" x')).toBe('plain words x');
    expect(made).toBe(0);
    expect(x.word('a$A')).toBe('a1');
    expect(x.word('${A}b')).toBe('1b');
    expect(made).toBe(1);
    expect([...x.used]).toEqual(['A']);
  });
});
