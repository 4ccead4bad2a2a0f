import { RegistryClient, type RegistryClientOptions } from './client.js';
import { StaticAuth, eraseCredentials, storeCredentials } from './dockerconfig.js';

export interface LoginOptions {
  /** Folder holding config.json (default $DOCKER_CONFIG or ~/.docker). */
  configDir?: string;
  /** Transport settings (certsDir, insecureRegistries) used to verify the credentials. */
  client?: Omit<RegistryClientOptions, 'auth'>;
  signal?: AbortSignal;
}

/**
 * `docker login`: check the credentials against `GET /v2/` (through the token flow when the
 * registry uses one), then store them docker-compatibly. Nothing is written when they are wrong.
 */
export async function login(host: string, username: string, password: string, options: LoginOptions = {}): Promise<void> {
  const client = new RegistryClient({ ...options.client, auth: new StaticAuth({ [host]: { username, password } }) });
  try {
    const res = await client.send({ host, method: 'GET', path: '/v2/', scopes: [], ...(options.signal ? { signal: options.signal } : {}) });
    if (res.statusCode !== 200) await RegistryClient.fail(`login to ${host}`, res);
    await res.body.dump();
  } finally {
    await client.close();
  }
  await storeCredentials(host, username, password, options.configDir, options.signal);
}

/** `docker logout`: returns false when no credentials were stored for the host. */
export async function logout(host: string, options: { configDir?: string; signal?: AbortSignal } = {}): Promise<boolean> {
  return eraseCredentials(host, options.configDir, options.signal);
}
