/**
 * Tree walks over tens of thousands of entries use synchronous fs calls: each async call costs a
 * thread-pool round trip and a promise, far more than the syscall itself. A walker calls the
 * returned `tick` once per entry so the event loop still gets a turn now and then (signals,
 * progress spinners, parallel stages) and an abort is noticed.
 */
export function cooperative(every = 256): (signal?: AbortSignal) => Promise<void> {
  let count = 0;
  return async (signal) => {
    if (++count < every) return;
    count = 0;
    await new Promise<void>((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
  };
}
