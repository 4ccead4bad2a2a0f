export type { SandboxMount, SandboxResult, SandboxSpec } from './types.js';
export { runInSandbox } from './run.js';
export { cleanupStale, recordHelperProcess } from './stale.js';
