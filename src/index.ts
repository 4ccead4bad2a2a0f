/**
 * tsbuild's library API: `import { build, push, pull, inspect, history, images } from 'tsbuild'`.
 * Thin typed wrappers over builder/registry/store (src/api); every call takes `root` (or an open
 * `store`), an AbortSignal and, where there is progress, an `onEvent` callback.
 */
export { build, pull, push, inspect, history, images, type BuildOptions, type PullOptions, type PushOptions, type RegistryOptions, type StoreOptions } from './api/index.js';
export type { HistoryEntry, ImageInspect, ImageSummary } from './api/index.js';
export type { BuildRequest, BuildResult } from './builder/execute.js';
export type { BuildEvent } from './builder/events.js';
export type { TransferEvent, AuthProvider, Credentials } from './registry/index.js';
export { openStore, defaultStoreRoot, type Store } from './store/index.js';
export { TsbuildError, isTsbuildError, type ErrorCode } from './util/errors.js';
export * from './image/index.js';
