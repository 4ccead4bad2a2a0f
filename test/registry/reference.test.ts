import { describe, expect, it } from 'vitest';
import { isLocalRegistry, parseReference, registryHost } from '../../src/image/reference.js';
import { parseChallenges } from '../../src/registry/challenge.js';
import { authKey } from '../../src/registry/dockerconfig.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  const valid: [string, string, string, string | undefined, string | undefined, string][] = [
    // input, registry, repository, tag, digest, familiar
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox:latest'],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined, 'busybox:1.36'],
    ['user/app', 'docker.io', 'user/app', 'latest', undefined, 'user/app:latest'],
    ['docker.io/library/alpine:3', 'docker.io', 'library/alpine', '3', undefined, 'alpine:3'],
    ['index.docker.io/user/app', 'docker.io', 'user/app', 'latest', undefined, 'user/app:latest'],
    ['localhost/app', 'localhost', 'app', 'latest', undefined, 'localhost/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000', 'app', 'v1', undefined, 'localhost:5000/app:v1'],
    ['127.0.0.1:5000/ns/app', '127.0.0.1:5000', 'ns/app', 'latest', undefined, '127.0.0.1:5000/ns/app:latest'],
    [`host.example/ns/app@${D}`, 'host.example', 'ns/app', undefined, D, `host.example/ns/app@${D}`],
    [`app:v1@${D}`, 'docker.io', 'library/app', 'v1', D, `app:v1@${D}`],
    ['ghcr.io/org/sub/tool:1.2.3-rc_1', 'ghcr.io', 'org/sub/tool', '1.2.3-rc_1', undefined, 'ghcr.io/org/sub/tool:1.2.3-rc_1'],
    ['a.b/c__d/e-f.g', 'a.b', 'c__d/e-f.g', 'latest', undefined, 'a.b/c__d/e-f.g:latest'],
    ['[::1]:5000/app', '[::1]:5000', 'app', 'latest', undefined, '[::1]:5000/app:latest'],
    ['Registry.Example/app', 'Registry.Example', 'app', 'latest', undefined, 'Registry.Example/app:latest'],
  ];
  it.each(valid)('%s', (input, registry, repository, tag, digest, familiar) => {
    const r = parseReference(input);
    expect({ registry: r.registry, repository: r.repository, tag: r.tag, digest: r.digest }).toEqual({ registry, repository, tag, digest });
    expect(r.familiar()).toBe(familiar);
    expect(r.toString()).toBe(`${registry}/${repository}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`);
    expect(parseReference(r.toString()).toString()).toBe(r.toString());
  });

  const invalid: [string, RegExp][] = [
    ['', /empty reference/],
    ['Busybox', /must be lowercase/],
    ['user/App', /must be lowercase/],
    ['app@sha256:abc', /digest must be/],
    ['app@md5:' + 'a'.repeat(32), /digest must be/],
    ['app:-bad', /bad tag/],
    ['app:' + 'a'.repeat(129), /bad tag/],
    ['host:5000//app', /empty path component/],
    ['app/', /empty path component/],
    ['-app', /bad path component/],
    ['app..x', /bad path component/],
    ['bad_host.example:x/app', /bad tag|bad registry host/],
    ['x/' + 'a'.repeat(260), /longer than 255/],
  ];
  it.each(invalid)('rejects %j', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'REFERENCE' });
    expect((err as Error).message).toMatch(new RegExp(`^invalid reference ${JSON.stringify(input).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect((err as Error).message).toMatch(why);
  });
});

describe('registry hosts', () => {
  it.each([
    ['docker.io', 'registry-1.docker.io'],
    ['index.docker.io', 'registry-1.docker.io'],
    ['ghcr.io', 'ghcr.io'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
  ])('registryHost(%s) = %s', (name, host) => expect(registryHost(name)).toBe(host));

  it.each([
    ['localhost', true],
    ['localhost:5000', true],
    ['127.0.0.1:5000', true],
    ['127.255.3.4', true],
    ['[::1]:5000', true],
    ['::1', true],
    ['128.0.0.1:5000', false],
    ['localhost.example.com', false],
    ['registry-1.docker.io', false],
  ])('isLocalRegistry(%s) = %s', (host, local) => expect(isLocalRegistry(host)).toBe(local));

  it.each([
    ['docker.io', 'https://index.docker.io/v1/'],
    ['registry-1.docker.io', 'https://index.docker.io/v1/'],
    ['ghcr.io', 'ghcr.io'],
  ])('docker config key for %s is %s', (host, key) => expect(authKey(host)).toBe(key));
});

describe('WWW-Authenticate', () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    ['Bearer realm="a\\"b", error=insufficient_scope', [{ scheme: 'bearer', params: { realm: 'a"b', error: 'insufficient_scope' } }]],
    ['Basic realm="x", Bearer realm="y"', [{ scheme: 'basic', params: { realm: 'x' } }, { scheme: 'bearer', params: { realm: 'y' } }]],
    ['', []],
  ])('%s', (header, want) => expect(parseChallenges(header)).toEqual(want));
});
