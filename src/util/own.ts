/**
 * A record's own value for a key that came from outside (a build-arg, secret or ssh id, an
 * environment variable name): `__proto__` or `constructor` must not find Object.prototype's.
 */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
