import { TsbuildError, type TsbuildErrorOptions } from '../util/errors.js';

export interface RegistryErrorOptions extends TsbuildErrorOptions {
  status?: number;
  registryCodes?: string[];
  temporary?: boolean;
}

/** A distribution API failure. Messages are one line and never carry credentials. */
export class RegistryError extends TsbuildError {
  readonly status: number | undefined;
  readonly registryCodes: string[];
  /** True when retrying the same request may succeed (5xx, 429, dropped connection). */
  readonly temporary: boolean;

  constructor(message: string, options: RegistryErrorOptions = {}) {
    super('REGISTRY', message, options);
    this.name = 'RegistryError';
    this.status = options.status;
    this.registryCodes = options.registryCodes ?? [];
    this.temporary = options.temporary ?? false;
  }
}

interface ErrorBody {
  errors?: { code?: unknown; message?: unknown }[];
}

/** Registry error codes and messages from an `{errors: [...]}` body; tolerant of junk. */
export function parseErrorBody(text: string): { codes: string[]; messages: string[] } {
  const codes: string[] = [];
  const messages: string[] = [];
  try {
    const body = JSON.parse(text) as ErrorBody;
    for (const e of body.errors ?? []) {
      if (typeof e.code === 'string') codes.push(e.code);
      if (typeof e.message === 'string') messages.push(e.message);
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): the status alone has to do.
  }
  return { codes, messages };
}

export function isTemporaryStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** Turn a failed response into a RegistryError with a one-line message about `what`. */
export function errorFromResponse(what: string, status: number, bodyText: string): RegistryError {
  const { codes, messages } = parseErrorBody(bodyText);
  const detail = messages.length > 0 ? `: ${messages.join('; ').replace(/\s+/g, ' ').slice(0, 200)}` : '';
  let message: string;
  if (status === 401 || codes.includes('UNAUTHORIZED')) message = `${what}: unauthorized (authentication required or credentials rejected)`;
  else if (status === 403 || codes.includes('DENIED')) message = `${what}: access denied`;
  else if (status === 404 || codes.some((c) => c.endsWith('_UNKNOWN'))) message = `${what}: not found`;
  else if (status === 429 || codes.includes('TOOMANYREQUESTS')) message = `${what}: too many requests (rate limited)`;
  else if (codes.includes('DIGEST_INVALID')) message = `${what}: digest mismatch reported by registry`;
  else if (status === 415 || codes.includes('MANIFEST_INVALID')) message = `${what}: unsupported or invalid manifest`;
  else if (status === 413) message = `${what}: too large for the registry`;
  else message = `${what}: HTTP ${status}`;
  return new RegistryError(`${message}${detail}`, { status, registryCodes: codes, temporary: isTemporaryStatus(status) });
}

/** Network errors worth retrying: the request may never have reached the server. */
export function isConnectionError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return (
    typeof code === 'string' &&
    [
      'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
      'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
    ].includes(code)
  );
}
