import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { writeAtomic } from '../util/fs.js';
import { DOCKER_HUB } from '../image/reference.js';
import type { AuthProvider, Credentials } from './types.js';

/** Docker's key for Hub credentials in config.json and credential helpers. */
export const HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] ?? join(homedir(), '.docker');
}

export async function readDockerConfig(dir = dockerConfigDir()): Promise<DockerConfigFile> {
  try {
    return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as DockerConfigFile;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return {};
    throw new TsbuildError('USAGE', `cannot read ${join(dir, 'config.json')}`, { cause: err });
  }
}

async function writeDockerConfig(dir: string, config: DockerConfigFile): Promise<void> {
  await writeAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
}

/** The config.json key docker uses for a registry host. */
export function authKey(host: string): string {
  return host === DOCKER_HUB || host === 'index.docker.io' || host === 'registry-1.docker.io' ? HUB_AUTH_KEY : host;
}

/** "https://host:port/v1/" → "host:port", as docker's ConvertToHostname does. */
function keyHost(key: string): string {
  const stripped = key.replace(/^https?:\/\//, '');
  const host = stripped.split('/')[0] ?? stripped;
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

function fromEntry(e: AuthEntry): Credentials | undefined {
  const c: Credentials = {};
  if (e.auth !== undefined && e.auth !== '') {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new TsbuildError('USAGE', 'docker config.json: malformed "auth" entry');
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  } else if (e.username !== undefined) {
    c.username = e.username;
    if (e.password !== undefined) c.password = e.password;
  }
  if (e.identitytoken !== undefined && e.identitytoken !== '') c.identityToken = e.identitytoken;
  if (e.registrytoken !== undefined && e.registrytoken !== '') c.registryToken = e.registrytoken;
  return Object.keys(c).length > 0 ? c : undefined;
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin. */
export async function runCredentialHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, signal?: AbortSignal): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.resume();
    child.on('error', (err) => reject(new TsbuildError('USAGE', `credential helper docker-credential-${helper} failed to start`, { cause: err })));
    child.on('close', (code) => {
      // Helpers exit 1 with "credentials not found in native keychain" for unknown servers.
      if (code === 0) resolve(out);
      else if (action === 'get' && /not found/i.test(out)) resolve(undefined);
      else reject(new TsbuildError('USAGE', `credential helper docker-credential-${helper} ${action} exited with ${code}`));
    });
    child.stdin.end(input);
  });
}

async function helperGet(helper: string, host: string, signal?: AbortSignal): Promise<Credentials | undefined> {
  const out = await runCredentialHelper(helper, 'get', authKey(host), signal);
  if (out === undefined || out.trim() === '') return undefined;
  const r = JSON.parse(out) as { Username?: string; Secret?: string };
  if (r.Secret === undefined || r.Secret === '') return undefined;
  // Docker's convention: username "<token>" means the secret is an identity (refresh) token.
  if (r.Username === '<token>') return { identityToken: r.Secret };
  return { username: r.Username ?? '', password: r.Secret };
}

/** Credentials from docker's config.json: credHelpers, then credsStore, then `auths`. */
export class DockerConfigAuth implements AuthProvider {
  constructor(private readonly dir: string = dockerConfigDir()) {}

  async credentials(host: string, o: { signal?: AbortSignal } = {}): Promise<Credentials | undefined> {
    const config = await readDockerConfig(this.dir);
    const want = keyHost(authKey(host));
    const helper = config.credHelpers?.[authKey(host)] ?? config.credHelpers?.[host];
    if (helper !== undefined) return helperGet(helper, host, o.signal);
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
      if (keyHost(key) === want) {
        const c = fromEntry(entry);
        if (c) return c;
      }
    }
    if (config.credsStore !== undefined && config.credsStore !== '') return helperGet(config.credsStore, host, o.signal);
    return undefined;
  }
}

/** Fixed credentials per host, for library callers that manage secrets themselves. */
export class StaticAuth implements AuthProvider {
  constructor(private readonly byHost: Record<string, Credentials>) {}
  credentials(host: string): Promise<Credentials | undefined> {
    return Promise.resolve(this.byHost[host] ?? this.byHost[keyHost(authKey(host))]);
  }
}

/** Save credentials the way `docker login` does (credential store when configured). */
export async function storeCredentials(host: string, username: string, password: string, dir = dockerConfigDir(), signal?: AbortSignal): Promise<void> {
  const config = await readDockerConfig(dir);
  const key = authKey(host);
  const helper = config.credHelpers?.[key] ?? config.credsStore;
  config.auths ??= {};
  if (helper !== undefined && helper !== '') {
    await runCredentialHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }), signal);
    config.auths[key] = {};
  } else {
    config.auths[key] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  }
  await writeDockerConfig(dir, config);
}

/** Remove stored credentials; returns false when there were none. */
export async function eraseCredentials(host: string, dir = dockerConfigDir(), signal?: AbortSignal): Promise<boolean> {
  const config = await readDockerConfig(dir);
  const key = authKey(host);
  const helper = config.credHelpers?.[key] ?? config.credsStore;
  let found = false;
  for (const k of Object.keys(config.auths ?? {})) {
    if (keyHost(k) === keyHost(key) && config.auths) {
      delete config.auths[k];
      found = true;
    }
  }
  if (helper !== undefined && helper !== '') {
    await runCredentialHelper(helper, 'erase', key, signal);
    found = true;
  }
  if (found) await writeDockerConfig(dir, config);
  return found;
}
