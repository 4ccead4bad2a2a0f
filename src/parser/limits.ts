/**
 * How big a Dockerfile tsbuild accepts. Without a bound a 100 MiB file exhausted V8's heap (exit
 * 134, no message). 16 MiB is BuildKit's own ceiling in practice (the Dockerfile reaches its
 * frontend in one gRPC message, 16 MiB by default) and a thousand times a large real Dockerfile.
 * Bytes alone do not bound the memory: 16 MiB of `ENV A=1` lines is two million instructions,
 * about 1.4 GB of parsed instructions, more than a 2 GB heap (Node's default on an 8 GB machine)
 * survives. So the instruction count is bounded too, far above anything written by hand or
 * generated in practice (a 20,000-instruction build already takes minutes).
 */
import { DockerfileError } from './errors.js';

export const MAX_DOCKERFILE_BYTES = 16 << 20;
export const MAX_INSTRUCTIONS = 100_000;

/** The error for a Dockerfile over MAX_DOCKERFILE_BYTES: `subject` names it (`Dockerfile ./x/Dockerfile`), `size` when known. */
export function dockerfileTooLarge(subject: string, options: { size?: number; hint?: string } = {}): DockerfileError {
  const actual = options.size === undefined ? '' : ` (${(options.size / 2 ** 20).toFixed(1)} MiB)`;
  return new DockerfileError(`${subject} is larger than the ${MAX_DOCKERFILE_BYTES >> 20} MiB a Dockerfile may have${actual}`, {
    hint: options.hint ?? 'is this the right file? (-f names the Dockerfile)',
  });
}
