/**
 * Typed progress events the builder emits. No UI code here: the CLI renders them (tty/plain/json)
 * and library users receive them through the `onEvent` callback.
 */
export type BuildEvent =
  | { type: 'step-start'; id: number; stage: string; index: number; total: number; text: string }
  | { type: 'step-log'; id: number; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'step-cached'; id: number }
  | { type: 'step-miss'; id: number; reasons: string[] }
  | { type: 'step-done'; id: number; durationMs: number; layerSize?: number }
  | { type: 'step-error'; id: number; message: string }
  | { type: 'warning'; message: string }
  | { type: 'pull'; ref: string; digest: string; phase: 'start' | 'progress' | 'done' | 'exists'; bytes: number; total: number }
  | {
      type: 'build-done';
      imageId: string;
      manifestDigest: string;
      tags: string[];
      durationMs: number;
      /** Context files read and hashed vs. answered by the stat memo (a warm build reads none). */
      context?: { filesRead: number; memoHits: number };
    };

export type EventSink = (event: BuildEvent) => void;
