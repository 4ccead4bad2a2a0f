// Builds a tiny FROM scratch image with the tsbuild library API into a temporary store, then
// prints its digest and history. Run from the repository after `npm run build`:
//   node examples/api/build.mjs
// (inside this package `tsbuild` resolves to the package itself through its `exports` field).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, history, inspect } from 'tsbuild';

const dir = await mkdtemp(join(tmpdir(), 'tsbuild-api-example-'));
const controller = new AbortController();
try {
  const context = join(dir, 'context');
  await mkdir(context);
  await writeFile(join(context, 'hello.txt'), 'hello from the tsbuild API\n');
  await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n');

  const root = join(dir, 'store');
  const result = await build({
    contextDir: context,
    tags: ['example/hello:api'],
    root,
    signal: controller.signal,
    onEvent: (event) => {
      if (event.type === 'step-start') console.log(`step ${event.index}/${event.total}: ${event.text}`);
    },
  });
  console.log(`digest: ${result.manifestDigest}`);
  console.log(`image id: ${result.configDigest}`);

  const info = await inspect('example/hello:api', { root });
  console.log(`tags: ${info.RepoTags.join(', ')}  layers: ${info.RootFS.Layers.length}  cmd: ${JSON.stringify(info.Config.Cmd)}`);
  for (const entry of await history('example/hello:api', { root })) {
    console.log(`history: ${entry.createdBy} (${entry.size} bytes)`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
