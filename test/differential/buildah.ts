/**
 * buildah as a reference builder: a private storage root (vfs driver: no overlay-on-overlay
 * trouble), runc as the runtime (crun fails here), host network (no CNI setup needed), docker
 * format so HEALTHCHECK is kept. The image is read back with `buildah push … oci:DIR` (layers,
 * applied with our extractor) and `buildah inspect` (config).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageConfig } from '../../src/image/index.js';
import { run } from '../services/index.js';
import { flattenOciLayout } from './helpers.js';

export class Buildah {
  readonly #global: string[];
  readonly #work: string;
  #n = 0;

  constructor(work: string) {
    this.#work = work;
    this.#global = ['--root', join(work, 'root'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
  }

  /** Builds `contextDir` and applies the result into `rootfs`; returns the image config. */
  async build(contextDir: string, rootfs: string): Promise<ImageConfig['config']> {
    const tag = `localhost/diff/case${++this.#n}:latest`;
    await run('buildah', [
      ...this.#global, 'bud', '--tls-verify=false', '--runtime', '/usr/sbin/runc', '--network', 'host',
      '--format', 'docker', '--quiet', '-t', tag, contextDir,
    ]);
    const layout = join(this.#work, `layout${this.#n}`);
    await run('buildah', [...this.#global, 'push', '--quiet', tag, `oci:${layout}`]);
    await mkdir(rootfs, { recursive: true });
    await flattenOciLayout(layout, rootfs);
    const inspect = JSON.parse(await run('buildah', [...this.#global, 'inspect', '--type', 'image', tag])) as { Docker: { config?: ImageConfig['config'] } };
    return inspect.Docker.config;
  }

  /** buildah leaves vfs layers it mounted; unmount everything before the dir is removed. */
  async cleanup(): Promise<void> {
    await run('buildah', [...this.#global, 'rm', '--all']).catch(() => '');
    await run('buildah', [...this.#global, 'rmi', '--all', '--force']).catch(() => '');
  }
}
