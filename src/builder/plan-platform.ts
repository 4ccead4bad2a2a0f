/** Platform strings for planning: parse/normalise like containerd's platforms package (subset). */
import { DockerfileError } from '../parser/errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const knownOS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'ios', 'js', 'wasip1', 'plan9', 'dragonfly']);

function normalizeArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  const a = arch.toLowerCase();
  const v = variant?.toLowerCase();
  switch (a) {
    case 'i386': return { architecture: '386' };
    case 'x86_64': case 'x86-64': case 'amd64': return v === undefined || v === '' || v === 'v1' ? { architecture: 'amd64' } : { architecture: 'amd64', variant: v };
    case 'aarch64': case 'arm64': return v === undefined || v === '' || v === '8' || v === 'v8' ? { architecture: 'arm64' } : { architecture: 'arm64', variant: v };
    case 'armhf': return { architecture: 'arm', variant: 'v7' };
    case 'armel': return { architecture: 'arm', variant: 'v6' };
    case 'arm': {
      const vv = v === undefined || v === '' || v === '7' ? 'v7' : v === '5' || v === '6' || v === '8' ? 'v' + v : v;
      return { architecture: 'arm', variant: vv };
    }
    default: return v === undefined || v === '' ? { architecture: a } : { architecture: a, variant: v };
  }
}

export function parsePlatform(spec: string, defaults: Platform = { os: 'linux', architecture: 'amd64' }): Platform {
  const parts = spec.trim().split('/');
  const bad = (): DockerfileError => new DockerfileError(`failed to parse platform ${spec}`);
  if (parts.some((p) => p === '') || parts.length > 3) throw bad();
  if (parts.length === 1) {
    const p = (parts[0] as string).toLowerCase();
    if (knownOS.has(p)) return { os: p, ...normalizeArch(defaults.architecture, defaults.variant) };
    return { os: 'linux', ...normalizeArch(p, undefined) };
  }
  const os = (parts[0] as string).toLowerCase();
  if (!/^[a-z0-9_-]+$/.test(os)) throw bad();
  return { os, ...normalizeArch(parts[1] as string, parts[2]) };
}

export function formatPlatform(p: Platform): string {
  return p.variant === undefined || p.variant === '' ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/** TARGET* and BUILD* predefined ARGs (BuildKit's defaultArgs). */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ]);
}

/** Proxy build-args: usable by RUN without an ARG, kept out of history and cache keys. */
export const proxyArgNames: ReadonlySet<string> = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((n) => [n, n.toLowerCase()]),
);
