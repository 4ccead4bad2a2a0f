import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { buildManifest, checkImageShape, encodeConfig, encodeManifest, looksLikeIndex, parseConfig, parseIndex, parseManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import type { ImageConfig } from '../../src/image/types.js';

const layer = { mediaType: MediaType.OciLayerGzip, digest: sha256Digest('l'), size: 1 };
const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest('d')] } };

describe('manifest helpers', () => {
  it('encodes OCI by default and round-trips through parse', () => {
    const cfg = encodeConfig(config);
    expect(cfg.descriptor).toEqual({ mediaType: MediaType.OciConfig, digest: sha256Digest(cfg.bytes), size: cfg.bytes.length });
    const m = encodeManifest(buildManifest(cfg.descriptor, [layer]));
    expect(parseManifest(m.bytes)).toEqual({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfg.descriptor, layers: [layer] });
    expect(parseConfig(cfg.bytes)).toEqual(config);
    expect(encodeConfig(config, 'docker').descriptor.mediaType).toBe(MediaType.DockerConfig);
  });

  it('rejects malformed documents with IMAGE errors', () => {
    expect(() => parseManifest('[]')).toThrow(expect.objectContaining({ code: 'IMAGE' }));
    expect(() => parseManifest('{"schemaVersion":1}')).toThrow(/schemaVersion/);
    expect(() => parseManifest(JSON.stringify({ schemaVersion: 2, config: { ...layer, digest: 'md5:x' }, layers: [] }))).toThrow(/bad digest/);
    expect(() => parseIndex('{"schemaVersion":2}')).toThrow(/manifests/);
    expect(() => parseConfig('{"rootfs":{"type":"layers","diff_ids":["nope"]}}')).toThrow(/diff_id/);
  });

  it('tells indexes from manifests', () => {
    expect(looksLikeIndex({ mediaType: MediaType.DockerManifestList })).toBe(true);
    expect(looksLikeIndex({ manifests: [] })).toBe(true);
    expect(looksLikeIndex({ mediaType: MediaType.OciManifest })).toBe(false);
  });

  it('checkImageShape applies the structural rules', () => {
    const cfg = encodeConfig(config).descriptor;
    expect(checkImageShape(buildManifest(cfg, [layer]), config)).toEqual([]);
    const problems = checkImageShape(buildManifest({ ...cfg, mediaType: 'text/plain' }, [layer, { ...layer, mediaType: MediaType.DockerLayerGzip }]), config);
    expect(problems).toEqual([
      'config media type text/plain is not an image config',
      'OCI manifest mixes in Docker layer media types',
      'config has 1 diff_ids but manifest has 2 layers',
    ]);
  });
});
