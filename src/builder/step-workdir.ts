/**
 * WORKDIR: the path joins the previous one; unless it is `/`, BuildKit makes it with
 * mkdir -p (0755, owned by the current USER) as a layer — an empty one when it already exists.
 */
import { chmod, chown, mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { WorkdirInstruction } from '../parser/types.js';
import { TsbuildError } from '../util/errors.js';
import type { Expander } from './expand.js';
import { RootfsView } from './rootfs.js';
import type { StageState } from './state.js';
import { commitStepLayer, historyEntry, lowerDirsOf, type Prepared, type StepDelta, type StepEnv } from './steps.js';
import { resolveChown } from './users.js';

export async function prepareWorkdir(ins: WorkdirInstruction, state: StageState, env: StepEnv, x: Expander): Promise<Prepared> {
  const cc = (state.config.config ??= {});
  const wd = posix.resolve(cc.WorkingDir !== undefined && cc.WorkingDir !== '' ? cc.WorkingDir : '/', x.word(ins.path));
  cc.WorkingDir = wd;
  if (wd === '/') {
    (state.config.history ??= []).push(historyEntry('WORKDIR /', env, true));
    return Promise.resolve({ state });
  }
  const user = cc.User ?? '';
  const lowerDirs = lowerDirsOf(state, env.store);
  const inputs = { parent: state.key, platform: `${env.platform.os}/${env.platform.architecture}`, instruction: `WORKDIR ${wd}`, env: [], extra: { user } };
  const apply = async (): Promise<StepDelta> => {
    const staging = await mkdtemp(join(env.store.tmpDir, 'workdir-'));
    try {
      const view = new RootfsView(lowerDirs);
      const owner = user !== '' ? await resolveChown(view, user) : { uid: 0, gid: 0 };
      // Only the components missing from the rootfs are created (none: an empty layer). Their
      // existing ancestors are recreated in the staged upper dir with their own attributes (what
      // overlay copy-up does), so the layer never resets a parent's owner or mode.
      const chain: { path: string; stat: Stats | undefined }[] = [];
      let current = '/';
      for (const part of wd.split('/').filter((p) => p !== '')) {
        const resolved = await view.resolve(posix.join(current, part), true);
        current = resolved.path;
        const st = resolved.entry?.stat;
        if (st !== undefined && !st.isDirectory()) throw new TsbuildError('DOCKERFILE', `WORKDIR ${wd}: ${current} exists and is not a directory`);
        chain.push({ path: current, stat: st });
      }
      if (chain.some((c) => c.stat === undefined)) {
        for (const { path, stat } of chain) {
          const host = join(staging, path);
          await mkdir(host, { recursive: true, mode: 0o755 });
          await chown(host, stat?.uid ?? owner.uid, stat?.gid ?? owner.gid);
          await chmod(host, stat !== undefined ? stat.mode & 0o7777 : 0o755);
        }
        // Times last (each mkdir bumps its parent's): an existing ancestor keeps its own, except
        // the one that gained a new entry, as in BuildKit's snapshot.
        for (const [i, { path, stat }] of chain.entries()) {
          if (stat !== undefined && chain[i + 1]?.stat !== undefined) await utimes(join(staging, path), stat.atime, stat.mtime);
        }
      }
      return await commitStepLayer(env, staging, [], `WORKDIR ${wd}`);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  };
  return { state, inputs, apply };
}
