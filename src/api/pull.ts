/** The pull behind `tsbuild pull` and the library's `pull()` lives with the builder, which also resolves FROM through it. */
export { pullIntoStore, type PullIntoStoreOptions } from '../builder/pull-image.js';
