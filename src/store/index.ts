export * from './types.js';
export { openStore, defaultStoreRoot } from './store.js';
export { prune, verifyStore, type PruneOptions } from './gc.js';
export { REF_NAME } from './tags.js';
export { withFileLock } from './lock.js';
