// Public library API. Grows as modules land.
export { TsbuildError, type ErrorCode } from './util/errors.js';
export * from './image/index.js';
