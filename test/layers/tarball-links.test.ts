/**
 * Incremental COPY shares inodes between snapshots (builder/copy-reuse.ts): a file whose only
 * other link is in another tree must be archived as a regular file, never as a hard link to a
 * path the layer does not contain. Links within the tree still pair up.
 */
import { linkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { upperDirChanges } from '../../src/layers/changes.js';
import { changesToTar } from '../../src/layers/tarball.js';
import { cleanup, collect, listTar, makeTree, tempDir } from './fixtures.js';

describe('changesToTar with inodes shared across trees', () => {
  const dir = tempDir();
  afterAll(() => cleanup(dir));

  it('archives a file linked from another tree as a file, and equals the unshared tree byte for byte', async () => {
    const spec = { 'a/one': 'one', 'a/two': 'two', 'b': 'bee' };
    makeTree(join(dir, 'old'), spec);
    makeTree(join(dir, 'fresh'), spec);
    makeTree(join(dir, 'shared'), { 'a/two': 'two', 'b': 'bee' });
    linkSync(join(dir, 'old/a/one'), join(dir, 'shared/a/one'));
    linkSync(join(dir, 'shared/b'), join(dir, 'shared/c'));
    linkSync(join(dir, 'fresh/b'), join(dir, 'fresh/c'));
    const tar = async (root: string): Promise<Buffer> => collect(changesToTar(root, await upperDirChanges(root, []), { sourceDateEpoch: 1_000_000 }));
    const shared = await tar(join(dir, 'shared'));
    expect(await listTar(shared)).toEqual([
      'dir a/ 755 0:0',
      'file a/one 644 0:0 one',
      'file a/two 644 0:0 two',
      'file b 644 0:0 bee',
      'link c 644 0:0 -> b',
    ]);
    expect(shared.equals(await tar(join(dir, 'fresh')))).toBe(true);
  });
});
