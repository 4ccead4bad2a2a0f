/**
 * WORKDIR: the path joins the previous one; unless it is `/`, BuildKit makes it with
 * mkdir -p (0755, owned by the current USER) as a layer — an empty one when it already exists.
 */
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { WorkdirInstruction } from '../parser/types.js';
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
      // Only the components missing from the rootfs are created (existing ones stay untouched).
      let current = '/';
      for (const part of wd.split('/').filter((p) => p !== '')) {
        const resolved = await view.resolve(posix.join(current, part), true);
        current = resolved.path;
        if (resolved.entry === undefined) {
          await mkdir(join(staging, current), { recursive: true, mode: 0o755 });
          await chown(join(staging, current), owner.uid, owner.gid);
        }
      }
      return await commitStepLayer(env, staging, [], `WORKDIR ${wd}`);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  };
  return { state, inputs, apply };
}
