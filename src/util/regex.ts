/**
 * RegExps built from patterns a context or a Dockerfile supplies (.dockerignore, COPY wildcards).
 * Glob patterns become backtracking regexps here (BuildKit's Go regexp is RE2, linear): `*a*a*a…b`
 * against a long name of a's took hours and blocked the event loop, so not even SIGTERM worked.
 * V8 switches such a regexp to its linear-time engine once it backtracks too much, with this flag,
 * set once before the first pattern is compiled (measured: a 13-star pattern, 70 a's: 2 ms with it,
 * no answer in 10 s without).
 */
import { setFlagsFromString } from 'node:v8';

let linearFallback = false;

export function patternRegExp(source: string, flags?: string): RegExp {
  if (!linearFallback) {
    setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
    linearFallback = true;
  }
  return new RegExp(source, flags);
}
