import { createServer, request as httpRequest, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface LoggedRequest {
  method: string;
  url: string;
  /** Date.now() when the request arrived. */
  at: number;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
  status?: number;
  /** The proxy dropped this request's connection on purpose. */
  reset?: boolean;
  injected?: boolean;
}

export interface FaultProxy {
  host: string;
  url: string;
  requests: LoggedRequest[];
  /** The next n requests are answered with `status` (default 500) without reaching the registry. */
  failNext(n: number, status?: number): void;
  /** The next n requests get 429 with `Retry-After: seconds`. */
  rateLimitNext(seconds: number, n?: number): void;
  /** Drop the connection once `afterBytes` of a PATCH body arrived, skipping the first `skip` PATCHes. */
  resetUpload(afterBytes: number, skip?: number): void;
  /** Flip a byte in the body of the next successful blob GET (of `digest`, when given). */
  corruptNextBlob(digest?: string): void;
  /** Answer the next manifest GET with `body` instead of the registry's (chunked: no Content-Length). */
  injectManifest(body: Buffer, mediaType: string, o?: { chunked?: boolean }): void;
  /** Answer blob GETs with 307 to `${base}/<digest>` (object-storage style), or stop doing so. */
  redirectBlobsTo(base: string | undefined): void;
  stop(): Promise<void>;
}

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;

/**
 * A loopback HTTP proxy in front of a real registry that injects the failures registries and
 * networks produce. The upstream registry does the real work for every request that is not faulted.
 */
export async function startFaultProxy(target: { url: string; ca?: string }): Promise<FaultProxy> {
  const upstream = new URL(target.url);
  const isHttps = upstream.protocol === 'https:';
  const agent = isHttps ? new HttpsAgent({ keepAlive: true, ...(target.ca !== undefined ? { ca: target.ca } : {}) }) : new HttpAgent({ keepAlive: true });
  const requests: LoggedRequest[] = [];
  let fail = { n: 0, status: 500 };
  let rate = { n: 0, seconds: 0 };
  let reset: { afterBytes: number; skip: number } | undefined;
  let corrupt: { digest: string | undefined } | undefined;
  let redirect: string | undefined;
  let manifest: { body: Buffer; mediaType: string; chunked: boolean } | undefined;

  const forward = (req: IncomingMessage, res: ServerResponse, entry: LoggedRequest, body: Buffer | undefined): void => {
    const path = req.url ?? '/';
    const send = isHttps ? httpsRequest : httpRequest;
    const up = send(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers: { ...req.headers, 'x-forwarded-proto': 'http' }, agent },
      (ures) => {
        entry.status = ures.statusCode ?? 0;
        const bare = path.split('?')[0] ?? '';
        const corruptThis =
          corrupt !== undefined && req.method === 'GET' && BLOB_GET.test(bare) && ures.statusCode === 200 && (corrupt.digest === undefined || bare.endsWith(corrupt.digest));
        if (corruptThis) corrupt = undefined;
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        let first = corruptThis;
        ures.on('data', (chunk: Buffer) => {
          if (first && chunk.length > 0) {
            first = false;
            chunk = Buffer.from(chunk);
            chunk[chunk.length - 1] = (chunk[chunk.length - 1] ?? 0) ^ 0xff;
          }
          res.write(chunk);
        });
        ures.on('end', () => res.end());
        ures.on('error', () => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    if (body !== undefined) up.end(body);
    else req.pipe(up);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const entry: LoggedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', at: Date.now(), headers: req.headers, bodyBytes: 0 };
    requests.push(entry);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (fail.n > 0 || rate.n > 0) {
      const limited = fail.n === 0;
      if (limited) rate.n--;
      else fail.n--;
      entry.injected = true;
      entry.status = limited ? 429 : fail.status;
      req.resume();
      req.on('end', () => {
        const code = limited ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
        res.writeHead(entry.status ?? 500, { 'content-type': 'application/json', ...(limited ? { 'retry-after': String(rate.seconds) } : {}) });
        res.end(JSON.stringify({ errors: [{ code, message: 'injected by fault proxy' }] }));
      });
      return;
    }
    if (manifest !== undefined && req.method === 'GET' && /^\/v2\/.+\/manifests\/[^/]+$/.test(path)) {
      const m = manifest;
      manifest = undefined;
      entry.injected = true;
      entry.status = 200;
      res.writeHead(200, { 'content-type': m.mediaType, ...(m.chunked ? {} : { 'content-length': m.body.length }) });
      // Write in pieces so a chunked answer really streams.
      for (let i = 0; i < m.body.length; i += 256 * 1024) res.write(m.body.subarray(i, i + 256 * 1024));
      res.end();
      return;
    }
    if (redirect !== undefined && req.method === 'GET' && BLOB_GET.test(path)) {
      entry.status = 307;
      res.writeHead(307, { location: `${redirect}/${path.slice(path.lastIndexOf('/') + 1)}` }).end();
      return;
    }
    if (req.method === 'PATCH' && reset !== undefined) {
      if (reset.skip > 0) reset.skip--;
      else {
        // Buffer the body and drop the connection before the registry sees any of it, as when a
        // link dies and the server discards the partial request.
        const limitBytes = reset.afterBytes;
        reset = undefined;
        const chunks: Buffer[] = [];
        let dropped = false;
        req.on('data', (c: Buffer) => {
          if (dropped) return;
          chunks.push(c);
          entry.bodyBytes += c.length;
          if (entry.bodyBytes >= limitBytes) {
            dropped = true;
            entry.reset = true;
            req.socket.destroy();
          }
        });
        req.on('end', () => {
          if (!dropped) forward(req, res, entry, Buffer.concat(chunks));
        });
        return;
      }
    }
    req.on('data', (c: Buffer) => (entry.bodyBytes += c.length));
    forward(req, res, entry, undefined);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `http://${host}`,
    requests,
    failNext: (n, status = 500) => (fail = { n, status }),
    rateLimitNext: (seconds, n = 1) => (rate = { n, seconds }),
    resetUpload: (afterBytes, skip = 0) => (reset = { afterBytes, skip }),
    corruptNextBlob: (digest) => (corrupt = { digest }),
    redirectBlobsTo: (base) => (redirect = base),
    injectManifest: (body, mediaType, o = {}) => (manifest = { body, mediaType, chunked: o.chunked ?? false }),
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
