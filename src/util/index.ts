export * from './errors.js';
export * from './abort.js';
export * from './limit.js';
export * from './fs.js';
export * from './xattr.js';
