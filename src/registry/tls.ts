import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { loadUndici } from './undici.js';
import { errnoCode } from '../util/errors.js';

export interface TlsFiles {
  ca: string[];
  cert?: string;
  key?: string;
}

/**
 * Docker's per-registry TLS folder: `<certsDir>/<host:port>/` holds `*.crt` CA certificates and a
 * `*.cert` + `*.key` client pair. Missing folder → nothing extra.
 */
export async function readCertsDir(certsDir: string, host: string): Promise<TlsFiles> {
  const dir = join(certsDir, host);
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return { ca: [] };
    throw err;
  }
  const out: TlsFiles = { ca: [] };
  for (const name of names) {
    if (name.endsWith('.crt')) out.ca.push(await readFile(join(dir, name), 'utf8'));
    else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (names.includes(keyName)) {
        out.cert = await readFile(join(dir, name), 'utf8');
        out.key = await readFile(join(dir, keyName), 'utf8');
      }
    }
  }
  return out;
}

let deferredCaFile: string | undefined;
let extraCa: { file: string; pems: Promise<string[]> } | undefined;

/**
 * Takes over NODE_EXTRA_CA_CERTS from the bin/tsbuild launcher, which hid it from Node (Node parses
 * that file before any JavaScript runs, ~40 ms for Debian's bundle) and passed it on as
 * TSBUILD_DEFERRED_CA_CERTS. The variable goes back into the environment for the processes we
 * start (credential helpers), and its CAs are trusted from the first TLS connection on.
 */
export function adoptDeferredCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env.TSBUILD_DEFERRED_CA_CERTS;
  delete env.TSBUILD_DEFERRED_CA_CERTS;
  if (file === undefined || file === '') return;
  env.NODE_EXTRA_CA_CERTS = file;
  deferredCaFile = file;
}

/**
 * NODE_EXTRA_CA_CERTS as PEM text, when an agent must be given it: always when the launcher
 * deferred it (Node never loaded it), else only with registry CAs, because an explicit `ca`
 * replaces Node's default store, extra certificates included. Read once per file. Unreadable:
 * Node's own warning when deferred (Node warned at start-up otherwise), and no extra CAs, as Node does.
 */
function extraCaCerts(withRegistryCas: boolean): Promise<string[]> {
  const deferred = deferredCaFile !== undefined;
  const file = deferredCaFile ?? (withRegistryCas ? process.env.NODE_EXTRA_CA_CERTS : undefined);
  if (file === undefined || file === '') return Promise.resolve([]);
  if (extraCa?.file !== file) {
    const pems = readFile(file, 'utf8').then(
      (pem) => [pem],
      (err: unknown) => {
        if (deferred) process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      },
    );
    extraCa = { file, pems };
  }
  return extraCa.pems;
}

/**
 * An undici Agent: system CAs (with NODE_EXTRA_CA_CERTS) plus, for a registry host, the certs.d
 * CAs and client cert (other hosts get `{ ca: [] }`).
 */
export async function makeAgent(files: TlsFiles, verify: boolean, timeouts: { bodyTimeout?: number; headersTimeout?: number } = {}): Promise<Agent> {
  const { Agent } = await loadUndici();
  // node:tls loaded here, not at start-up: every command would pay ~5 ms for it otherwise.
  const { rootCertificates } = await import('node:tls');
  const ca = [...(await extraCaCerts(files.ca.length > 0)), ...files.ca];
  return new Agent({
    connect: {
      rejectUnauthorized: verify,
      ...(ca.length > 0 ? { ca: [...rootCertificates, ...ca] } : {}),
      ...(files.cert !== undefined && files.key !== undefined ? { cert: files.cert, key: files.key } : {}),
    },
    keepAliveTimeout: 10_000,
    ...(timeouts.bodyTimeout !== undefined ? { bodyTimeout: timeouts.bodyTimeout } : {}),
    ...(timeouts.headersTimeout !== undefined ? { headersTimeout: timeouts.headersTimeout } : {}),
  });
}

/** The peer spoke TLS but we do not trust its certificate. */
export function isCertificateError(err: unknown): boolean {
  const code = errnoCode(err) ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/.test(code);
}

/** The peer does not speak TLS at all (a plain-HTTP registry answering a ClientHello). */
export function isNotTlsError(err: unknown): boolean {
  const code = errnoCode(err) ?? '';
  const msg = err instanceof Error ? err.message : '';
  return code === 'EPROTO' || code.startsWith('ERR_SSL_') || /wrong version number|packet length too long|http request/i.test(msg);
}
