/**
 * undici is loaded on first use, not at import: compiling it costs ~0.1 s, and most commands
 * (a warm build, images, history) never talk to a registry.
 */
import type * as Undici from 'undici';

let loaded: Promise<typeof Undici> | undefined;

export function loadUndici(): Promise<typeof Undici> {
  loaded ??= import('undici');
  return loaded;
}
