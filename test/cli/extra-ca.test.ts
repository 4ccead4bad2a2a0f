/**
 * NODE_EXTRA_CA_CERTS through the real binary. bin/tsbuild hides the variable from Node's start-up
 * (Node would parse the whole file before any JavaScript runs) and the CLI trusts those CAs on its
 * first TLS connection instead: a registry and an ADD URL whose CA is only in that file are
 * reachable, the processes tsbuild starts (credential helpers) see the variable as it was, and the
 * launcher finds its files when started through npm's symlinks.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth, pushImage } from '../../src/registry/index.js';
import { makeServerCerts, removeDir, startRegistry, tempDir, type RunningRegistry } from '../services/index.js';
import { DirStore } from '../registry/dir-store.js';
import { makeImage, type TestImage } from '../registry/fixture.js';

const BIN = fileURLToPath(new URL('../../bin/tsbuild', import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function tsbuild(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(bin, args, { env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('NODE_EXTRA_CA_CERTS, deferred by bin/tsbuild', () => {
  let reg: RunningRegistry;
  let dir: string;
  let image: TestImage;
  let helperDir: string;
  let configDir: string;
  let probe: string;
  const ref = (): string => `${reg.host}/secure/app:v1`;
  const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: `${helperDir}:${process.env.PATH ?? ''}`, DOCKER_CONFIG: configDir, HOME: dir });

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'htpasswd-tls', users: [{ user: 'alice', password: 'wonder land' }] });
    dir = await tempDir('extra-ca');
    const src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ 'etc/motd': 'extra ca\n' }]);
    const pusher = new RegistryClient({ auth: new StaticAuth({ [reg.host]: { username: 'alice', password: 'wonder land' } }), certsDir: reg.certsDir ?? '' });
    try {
      await pushImage(pusher, src, parseReference(ref()), image);
    } finally {
      await pusher.close();
    }
    // A credentials store that answers for the registry and records the environment it was started with.
    helperDir = join(dir, 'bin');
    configDir = join(dir, 'docker');
    probe = join(dir, 'helper-env');
    await mkdir(helperDir, { recursive: true });
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(helperDir, 'docker-credential-caprobe'),
      `#!/bin/sh\nread server\nprintf 'extra=%s deferred=%s\\n' "\${NODE_EXTRA_CA_CERTS-unset}" "\${TSBUILD_DEFERRED_CA_CERTS-unset}" > ${probe}\n` +
        `if [ "$1" = get ] && [ "$server" = "${reg.host}" ]; then echo '{"ServerURL":"${reg.host}","Username":"alice","Secret":"wonder land"}'; exit 0; fi\n` +
        `echo "credentials not found in native keychain"; exit 1\n`,
      { mode: 0o755 },
    );
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credsStore: 'caprobe' }));
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    await removeDir(dir);
  });

  it('pulls from a registry whose CA is only in NODE_EXTRA_CA_CERTS; helpers see the variable unchanged', async () => {
    const caFile = reg.caFile ?? '';
    const ok = await tsbuild(BIN, ['--root', join(dir, 'root1'), 'pull', ref()], { ...baseEnv(), NODE_EXTRA_CA_CERTS: caFile });
    expect(ok.stderr).not.toContain('not trusted');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(image.digest);
    expect(await readFile(probe, 'utf8')).toBe(`extra=${caFile} deferred=unset\n`);

    // Without it the same pull fails on the certificate: the trust came from the variable.
    const refused = await tsbuild(BIN, ['--root', join(dir, 'root2'), 'pull', ref()], baseEnv());
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${reg.host}: TLS certificate not trusted`);

    // An unreadable file: Node's own warning, then no extra CAs (Node ignores it the same way).
    const missing = await tsbuild(BIN, ['--root', join(dir, 'root3'), 'pull', ref()], { ...baseEnv(), NODE_EXTRA_CA_CERTS: join(dir, 'no-such.pem') });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`Ignoring extra certs from \`${join(dir, 'no-such.pem')}\``);
    expect(missing.stderr).toContain('TLS certificate not trusted');
  }, 60_000);

  it('downloads an ADD https URL whose CA is only in NODE_EXTRA_CA_CERTS', async () => {
    const certs = await makeServerCerts(join(dir, 'https-certs'));
    const server: Server = createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, (_req, res) => {
      res.end('over tls\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const ctx = join(dir, 'ctx');
      await mkdir(ctx, { recursive: true });
      await writeFile(join(ctx, 'Dockerfile'), `FROM scratch\nADD https://127.0.0.1:${port}/hello.txt /hello.txt\n`);
      const out = join(dir, 'out');
      const built = await tsbuild(BIN, ['--root', join(dir, 'root4'), 'build', '-q', '-o', `type=local,dest=${out}`, ctx], {
        ...baseEnv(),
        NODE_EXTRA_CA_CERTS: certs.caFile,
      });
      expect(built.stderr).toBe('');
      expect(built.code).toBe(0);
      expect(await readFile(join(out, 'hello.txt'), 'utf8')).toBe('over tls\n');

      const refused = await tsbuild(BIN, ['--root', join(dir, 'root5'), 'build', '-q', ctx], baseEnv());
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`ADD https://127.0.0.1:${port}/hello.txt: request to https://127.0.0.1:${port}/hello.txt failed`);
    } finally {
      server.close();
    }
  }, 60_000);

  it('runs through an absolute or relative symlink, as npm installs bin entries', async () => {
    const links = join(dir, 'node_modules', '.bin');
    await mkdir(links, { recursive: true });
    await symlink(BIN, join(links, 'abs'));
    await symlink('abs', join(links, 'rel')); // a relative link to the absolute one
    for (const name of ['abs', 'rel']) {
      const r = await tsbuild(join(links, name), ['version'], { ...baseEnv(), NODE_EXTRA_CA_CERTS: reg.caFile ?? '' });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^tsbuild \d+\.\d+\.\d+/);
    }
  });
});
