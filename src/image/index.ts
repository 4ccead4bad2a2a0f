export * from './digest.js';
export * from './mediatypes.js';
export * from './types.js';
export * from './manifest.js';
export * from './reference.js';
