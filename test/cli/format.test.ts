/**
 * docker's output rules, encoded from its sources: go-units HumanSizeWithPrecision (1000-based,
 * Go's %.3g with ties to even and exponent form), HumanDuration, stringutils.Ellipsis, text/tabwriter
 * as docker configures it (minwidth 10, padding 3), and the Go-template subset of `inspect --format`.
 */
import { describe, expect, it } from 'vitest';
import { tabwrite } from '../../src/cli/format/table.js';
import { printValue, renderTemplate } from '../../src/cli/format/template.js';
import { createdSince, ellipsis, goFormatG, humanDuration, humanSize } from '../../src/cli/format/units.js';
import { isTsbuildError } from '../../src/util/errors.js';

describe("Go's %.*g", () => {
  it.each([
    [999.5, 3, '1e+03'],
    [1.125, 3, '1.12'], // exact binary tie: Go rounds half to even
    [1.005, 3, '1'], // really 1.00499999…: rounded on the exact value
    [1.135, 3, '1.14'], // really 1.13500000…0888
    [4.26155, 3, '4.26'],
    [10000, 4, '1e+04'],
    [1.024, 4, '1.024'],
    [0.5, 3, '0.5'],
    [123.456, 3, '123'],
    [99.95, 3, '100'], // really 99.95000000000000284…
    [2.5, 1, '2'],
    [3.5, 1, '4'],
    [1e-5, 3, '1e-05'],
    [0, 3, '0'],
  ])('%s with precision %s → %s', (v, p, want) => {
    expect(goFormatG(v, p)).toBe(want);
  });
});

describe('go-units HumanSize', () => {
  it('matches docker images/history sizes (precision 3)', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(1000)).toBe('1kB');
    expect(humanSize(1234)).toBe('1.23kB');
    expect(humanSize(1125)).toBe('1.12kB');
    expect(humanSize(4261550)).toBe('4.26MB');
    expect(humanSize(12345678)).toBe('12.3MB');
    expect(humanSize(123456789)).toBe('123MB');
    expect(humanSize(999500)).toBe('1e+03kB');
    expect(humanSize(77_800_000)).toBe('77.8MB');
    expect(humanSize(1.2e9)).toBe('1.2GB');
  });
  it("matches go-units' own table for HumanSize (precision 4)", () => {
    expect(humanSize(1000, 4)).toBe('1kB');
    expect(humanSize(1024, 4)).toBe('1.024kB');
    expect(humanSize(1_000_000, 4)).toBe('1MB');
    expect(humanSize(1_048_576, 4)).toBe('1.049MB');
    expect(humanSize(3.42e9, 4)).toBe('3.42GB');
    expect(humanSize(5.372e12, 4)).toBe('5.372TB');
    expect(humanSize(2.22e15, 4)).toBe('2.22PB');
    expect(humanSize(1e28, 4)).toBe('1e+04YB');
  });
});

describe('go-units HumanDuration', () => {
  const s = 1000;
  const h = 3600 * s;
  it.each([
    [0, 'Less than a second'],
    [1 * s, '1 second'],
    [47 * s, '47 seconds'],
    [60 * s, 'About a minute'],
    [3 * 60 * s, '3 minutes'],
    [35 * 60 * s, '35 minutes'],
    [59 * 60 * s, '59 minutes'],
    [60 * 60 * s, 'About an hour'],
    [90 * 60 * s, '2 hours'], // hours are rounded
    [47 * h, '47 hours'],
    [48 * h, '2 days'],
    [13 * 24 * h, '13 days'],
    [14 * 24 * h, '2 weeks'],
    [59 * 24 * h, '8 weeks'],
    [60 * 24 * h, '2 months'],
    [729 * 24 * h, '24 months'],
    [730 * 24 * h, '2 years'],
  ])('%s ms → %s', (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
  it('CREATED column appends "ago" and shows N/A without a date', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(createdSince('2024-05-01T10:00:00Z', now)).toBe('2 hours ago');
    expect(createdSince(undefined, now)).toBe('N/A');
    expect(createdSince('1970-01-01T00:00:00Z', now)).toBe('N/A');
  });
});

describe('Ellipsis and tabwriter', () => {
  it('truncates CREATED BY to 45 characters ending in …', () => {
    const long = `/bin/sh -c #(nop) ${'x'.repeat(60)}`;
    expect(ellipsis(long, 45)).toBe(`${long.slice(0, 44)}…`);
    expect(Array.from(ellipsis(long, 45))).toHaveLength(45);
    expect(ellipsis('short', 45)).toBe('short');
  });
  it('pads columns to the widest cell + 3, at least 10, the last cell unpadded', () => {
    const out = tabwrite([
      ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
      ['busybox', 'latest', 'a416a98b71e2', '2 weeks ago', '4.26MB'],
      ['app', 'v1', '0123456789ab', 'About an hour ago', '12.3kB'],
    ]);
    expect(out).toBe(
      'REPOSITORY   TAG       IMAGE ID       CREATED             SIZE\n' +
        'busybox      latest    a416a98b71e2   2 weeks ago         4.26MB\n' +
        'app          v1        0123456789ab   About an hour ago   12.3kB\n',
    );
  });
  it('keeps the padding of an empty last cell, as docker history does', () => {
    expect(tabwrite([['A', 'COMMENT'], ['x', '']])).toBe(`A${' '.repeat(9)}COMMENT\nx${' '.repeat(9)}\n`);
  });
  it('counts … as one column', () => {
    expect(tabwrite([['ab…', 'z'], ['abcd', 'z']])).toBe(`ab…${' '.repeat(7)}z\nabcd${' '.repeat(6)}z\n`);
  });
});

describe('inspect --format templates', () => {
  const data = {
    Id: 'sha256:abc',
    RepoTags: ['app:v1', 'app:latest'],
    Os: 'linux',
    Architecture: 'amd64',
    Config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Labels: null },
    RootFS: { Type: 'layers', Layers: ['sha256:1', 'sha256:2'] },
  };
  it.each([
    ['{{.Id}}', 'sha256:abc'],
    ['{{.Config.Env}}', '[PATH=/bin A=1]'],
    ['{{json .Config}}', '{"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Labels":null}'],
    ['{{index .RepoTags 0}}', 'app:v1'],
    ['{{range .RootFS.Layers}}{{.}}\\n{{end}}', 'sha256:1\nsha256:2\n'],
    ['{{.Os}}/{{.Architecture}}', 'linux/amd64'],
    ['{{.Config.Labels}}', '<nil>'],
    ['{{join .RepoTags ","}}', 'app:v1,app:latest'],
    ['{{len .RootFS.Layers}}', '2'],
    ['{{.Config.Env | json}}', '["PATH=/bin","A=1"]'],
    ['{{if .Config.Labels}}yes{{else}}no{{end}}', 'no'],
    ['{{range $x := .RepoTags}}{{end}}', undefined],
    ['{{- .Os -}} \\t {{upper .Architecture}}', 'linuxAMD64'],
    ['{{.RootFS}}', 'map[Layers:[sha256:1 sha256:2] Type:layers]'],
  ])('%s', (template, want) => {
    if (want === undefined) {
      expect(() => renderTemplate(template, data)).toThrow();
      return;
    }
    expect(renderTemplate(template, data)).toBe(want);
  });
  it('reports unknown fields and functions as usage errors', () => {
    for (const t of ['{{.Nope}}', '{{nope .Id}}', '{{range .RepoTags}}x', '{{.Id']) {
      let err: unknown;
      try {
        renderTemplate(t, data);
      } catch (e) {
        err = e;
      }
      expect(isTsbuildError(err) && err.code === 'USAGE').toBe(true);
    }
  });
  it("prints values like Go's %v", () => {
    expect(printValue([1, 'a', true])).toBe('[1 a true]');
    expect(printValue({ b: 1, a: [] })).toBe('map[a:[] b:1]');
    expect(printValue(undefined)).toBe('<no value>');
  });
});
