import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenIssuer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  /** Every token request seen: the scopes asked for and who asked. */
  requests: { scopes: string[]; user: string | undefined; method: string; at: number }[];
  stop(): Promise<void>;
}

export interface TokenIssuerOptions {
  keyFile: string;
  certFile: string;
  users: { user: string; password: string }[];
  service?: string;
  issuer?: string;
  expiresIn?: number;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

/**
 * A docker token server (https://distribution.github.io/distribution/spec/auth/token/): checks
 * Basic credentials and returns RS256 JWTs. Distribution 2.8 trusts a token whose `x5c` header
 * chains to its rootcertbundle; we put the (self-signed) signing certificate itself there.
 */
export async function startTokenIssuer(o: TokenIssuerOptions): Promise<TokenIssuer> {
  const key = createPrivateKey(await readFile(o.keyFile));
  const certDer = new X509Certificate(await readFile(o.certFile)).raw;
  const service = o.service ?? 'tsbuild-test-registry';
  const issuer = o.issuer ?? 'tsbuild-test-issuer';
  const requests: TokenIssuer['requests'] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const authz = req.headers.authorization ?? '';
    let user: string | undefined;
    if (authz.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
      const ok = o.users.some((x) => x.user === u && x.password === rest.join(':'));
      if (!ok) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        requests.push({ scopes, user: undefined, method: req.method ?? 'GET', at: Date.now() });
        return;
      }
      user = u;
    }
    const at = Date.now();
    requests.push({ scopes, user, method: req.method ?? 'GET', at });
    const now = Math.floor(at / 1000);
    const expiresIn = o.expiresIn ?? 300;
    // Authenticated users get what they ask for; anonymous callers get nothing.
    const access = user === undefined ? [] : scopes.map(parseScope).filter((s) => s !== undefined);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date(at).toISOString() }));
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
