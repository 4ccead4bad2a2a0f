import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { makeCertsDir, makeClientCert, makeServerCerts, makeTokenSigner } from './certs.js';
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js';
import { freePort, removeDir, run, tempDir } from './util.js';

export type RegistryMode = 'open' | 'htpasswd-tls' | 'token';

export interface RegistryUser {
  user: string;
  password: string;
}

export interface RunningRegistry {
  mode: RegistryMode;
  /** "127.0.0.1:PORT", as it appears in image references. */
  host: string;
  url: string;
  storageDir: string;
  users: RegistryUser[];
  caFile?: string;
  /** A docker certs.d-style folder holding `<host>/ca.crt` (TLS mode). */
  certsDir?: string;
  tokenIssuer?: TokenIssuer;
  /** Kill the registry (storage survives until stop()). */
  kill(): Promise<void>;
  /** Kill and start again on the same port over the same storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function yaml(o: { port: number; storage: string; tls?: { cert: string; key: string; clientCa?: string }; htpasswd?: string; token?: { realm: string; service: string; issuer: string; bundle: string } }): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${o.port}`,
    // A fixed secret keeps upload-session state valid across a restart.
    '  secret: tsbuild-test-secret',
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`);
  if (o.tls?.clientCa !== undefined) lines.push('    clientcas:', `      - ${o.tls.clientCa}`);
  if (o.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: tsbuild-test', `    path: ${o.htpasswd}`);
  if (o.token) {
    lines.push('auth:', '  token:', `    realm: ${o.token.realm}`, `    service: ${o.token.service}`, `    issuer: ${o.token.issuer}`, `    rootcertbundle: ${o.token.bundle}`);
  }
  return `${lines.join('\n')}\n`;
}

async function waitReady(url: string, tls: { ca: string | undefined; cert?: string; key?: string }, child: ChildProcess, stderr: () => string): Promise<void> {
  const agent = new Agent({ connect: tls.ca !== undefined ? { ca: tls.ca, ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}) } : {} });
  try {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`docker-registry exited: ${stderr()}`);
      try {
        const res = await request(`${url}/v2/`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not become ready: ${stderr()}`);
  } finally {
    await agent.close();
  }
}

/** Start a real Distribution registry on 127.0.0.1 with its own temp storage. */
export interface StartRegistryOptions {
  mode: RegistryMode;
  users?: RegistryUser[];
  /** htpasswd-tls only: also require a client certificate (placed in certsDir as client.cert/.key). */
  mutualTls?: boolean;
  /** token only: lifetime of issued tokens in seconds. */
  tokenExpiresIn?: number;
}

export async function startRegistry(options: StartRegistryOptions): Promise<RunningRegistry> {
  const root = await tempDir(`registry-${options.mode}`);
  const users = options.users ?? [{ user: 'tester', password: 'secret-pass' }];
  const storageDir = join(root, 'storage');
  await mkdir(storageDir);
  let tokenIssuer: TokenIssuer | undefined;
  let child: ChildProcess | undefined;
  try {
    let tls: { cert: string; key: string; clientCa?: string } | undefined;
    let client: { certFile: string; keyFile: string } | undefined;
    let caFile: string | undefined;
    let htpasswd: string | undefined;
    let token: { realm: string; service: string; issuer: string; bundle: string } | undefined;
    if (options.mode === 'htpasswd-tls') {
      const certs = await makeServerCerts(join(root, 'tls'));
      tls = { cert: certs.certFile, key: certs.keyFile };
      caFile = certs.caFile;
      if (options.mutualTls === true) {
        client = await makeClientCert(join(root, 'tls'), certs);
        tls.clientCa = certs.caFile;
      }
      htpasswd = join(root, 'htpasswd');
      const entries = await Promise.all(users.map((u) => run('htpasswd', ['-Bbn', u.user, u.password])));
      await writeFile(htpasswd, entries.map((e) => e.trim()).join('\n') + '\n');
    } else if (options.mode === 'token') {
      const signer = await makeTokenSigner(join(root, 'token'));
      tokenIssuer = await startTokenIssuer({ ...signer, users, ...(options.tokenExpiresIn !== undefined ? { expiresIn: options.tokenExpiresIn } : {}) });
      token = { realm: tokenIssuer.realm, service: tokenIssuer.service, issuer: tokenIssuer.issuer, bundle: signer.certFile };
    }
    const caText = caFile !== undefined ? await readFile(caFile, 'utf8') : undefined;
    const clientPair = client ? { cert: await readFile(client.certFile, 'utf8'), key: await readFile(client.keyFile, 'utf8') } : undefined;
    const scheme = tls ? 'https' : 'http';
    let stderrText = '';
    let port = 0;
    let configFile = '';
    const spawnRegistry = async (): Promise<void> => {
      stderrText = '';
      const proc = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      live.add(proc);
      proc.on('exit', () => live.delete(proc));
      proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderrText = (stderrText + d).slice(-4000)));
      child = proc;
      await waitReady(`${scheme}://127.0.0.1:${port}`, { ca: caText, ...clientPair }, proc, () => stderrText);
    };
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      configFile = join(root, 'config.yml');
      await writeFile(configFile, yaml({ port, storage: storageDir, ...(tls ? { tls } : {}), ...(htpasswd ? { htpasswd } : {}), ...(token ? { token } : {}) }));
      try {
        await spawnRegistry();
        break;
      } catch (err) {
        child?.kill('SIGKILL');
        if (attempt >= 3 || !/address already in use/.test(stderrText)) throw err;
      }
    }
    const host = `127.0.0.1:${port}`;
    const certsDir = caFile !== undefined ? await makeCertsDir(join(root, 'certs.d'), host, caFile) : undefined;
    if (certsDir !== undefined && client) {
      await copyFile(client.certFile, join(certsDir, host, 'client.cert'));
      await copyFile(client.keyFile, join(certsDir, host, 'client.key'));
    }
    const kill = async (): Promise<void> => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    };
    return {
      mode: options.mode,
      host,
      url: `${scheme}://${host}`,
      storageDir,
      users,
      ...(caFile !== undefined ? { caFile } : {}),
      ...(certsDir !== undefined ? { certsDir } : {}),
      ...(tokenIssuer ? { tokenIssuer } : {}),
      kill,
      restart: async () => {
        await kill();
        await spawnRegistry();
      },
      stop: async () => {
        try {
          await kill();
          await tokenIssuer?.stop();
        } finally {
          await removeDir(root);
        }
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    await tokenIssuer?.stop();
    await removeDir(root);
    throw err;
  }
}
