export { parseDockerfile, type ParseOptions } from './parse.js';
export { dumpBuildkit } from './dump.js';
export { DockerfileError, isDockerfileError, type DockerfileErrorDetails } from './errors.js';
export { expandWord, expandWords, expandWordWithMatches, ShellLexError, type EnvSource, type ExpandOptions, type ExpandResult } from './shell/index.js';
export { parseDockerignore, createIgnoreMatcher, findDockerignore, cleanPath, type IgnorePattern, type IgnoreMatcher } from './dockerignore.js';
export { parseRunMount } from './instructions/mount.js';
export { chompHeredocContent, parseHeredocWord } from './heredoc.js';
export type * from './types.js';
