export * from './types.js';
export { openStore, defaultStoreRoot } from './store.js';
export { prune, type PruneOptions } from './gc.js';
export { verifyStore } from './verify.js';
export { sweepTmp } from './tmp.js';
export { asStoreNoSpace, isNoSpace } from './nospace.js';
export { REF_NAME } from './tags.js';
export { holdFileLock, withFileLock, type LockMode } from './lock.js';
