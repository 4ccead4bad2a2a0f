/**
 * The file a heredoc becomes (`COPY <<NAME`, a `RUN <<NAME` script): BuildKit writes it into a
 * scratch dir, so a `..` in NAME stops at that dir, and NAME must come down to one file name.
 * Used for every host path built from a name: unchecked, `COPY <<../../../tmp/x` wrote on the host.
 */
import { TsbuildError } from '../util/errors.js';
import { normaliseSource } from './context.js';

export function heredocFileName(name: string): string {
  // The same cleaning as a COPY source against its root: `..` stops there.
  const parts = normaliseSource(name);
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only === undefined) throw new TsbuildError('DOCKERFILE', `heredoc name ${JSON.stringify(name)} does not name one file`);
  return only;
}
