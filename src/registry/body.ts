/** Bounded reads of response bodies the client only needs a little of. */
import type { Dispatcher } from 'undici';

/**
 * At most `max` bytes of a response body as text, the rest left unread (the body is destroyed): an
 * error or token body is read whole only up to what a message or a token can use, so a registry
 * answering with an endless body cannot fill memory.
 */
export async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > max) {
      truncated = true;
      break;
    }
  }
  if (truncated) body.destroy();
  return { text: Buffer.concat(chunks).subarray(0, max).toString('utf8'), truncated };
}
