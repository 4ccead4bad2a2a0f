/** RUN --mount=type=secret (env=, defaults, required) and type=ssh (--ssh agent forwarding) through real builds. */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSshSpecs } from '../../src/builder/mount-ssh.js';
import { runMain } from '../cli/helpers.js';
import { runCli } from './cli-helpers.js';
import { failure, imageOf, logOf, runBuild, tempDir, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

describe('RUN --mount=type=secret', () => {
  let secret = '';
  beforeAll(async () => {
    const dir = await tempDir('secret');
    fx.cleanup.push(dir);
    secret = join(dir, 'token');
    await writeFile(secret, 's3cret', { mode: 0o644 });
  });

  it('env= exposes the secret as a variable only; it stays out of the image and the cache key', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=secret,id=tok,env=TOKEN echo "[$TOKEN]" && (test -e /run/secrets/tok || echo no-file)\n' });
    const { events, result } = await runBuild(fx.store, { contextDir: dir, secrets: { tok: secret } });
    expect(logOf(events)).toBe('[s3cret]\nno-file\n');
    const { config } = await imageOf(fx.store, result.manifestDigest);
    expect(JSON.stringify(config)).not.toContain('s3cret');
    await writeFile(secret, 'changed');
    const again = await runBuild(fx.store, { contextDir: dir, secrets: { tok: secret } });
    expect(again.events.some((e) => e.type === 'step-cached')).toBe(true);
    await writeFile(secret, 's3cret');
  });

  it('defaults: id from the target base name, root 0400 file; uid/gid/mode options; env and target together', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        'FROM busybox:local',
        'RUN --mount=type=secret,target=/etc/tok stat -c "%a %u %g" /etc/tok && cat /etc/tok && echo',
        'RUN --mount=type=secret,id=tok,uid=1000,gid=100,mode=0440 stat -c "%a %u %g" /run/secrets/tok',
        'RUN --mount=type=secret,id=tok,env=T,target=/s echo "$T" && cat /s',
      ].join('\n'),
    });
    const { events, result } = await runBuild(fx.store, { contextDir: dir, secrets: { tok: secret }, noCache: true });
    expect(logOf(events)).toBe('400 0 0\ns3cret\n440 1000 100\ns3cret\ns3cret');
    const { view } = await imageOf(fx.store, result.manifestDigest);
    for (const p of ['/etc/tok', '/run/secrets', '/s']) expect((await view.resolve(p, false)).entry, p).toBeUndefined();
  });

  it('required=true without the secret fails before running, naming the Dockerfile line', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN echo ok\nRUN --mount=type=secret,id=npmrc,env=NPMRC,required=true echo never\n' });
    const err = await failure(runBuild(fx.store, { contextDir: dir }));
    expect(err).toMatchObject({ code: 'USAGE', line: 3, message: expect.stringContaining('secret npmrc is required') as unknown });
  });
});

describe('--secret and -f - on the command line (buildx grammar)', () => {
  const build = async (dockerfile: string, args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<{ code: number; log: string }> => {
    const dir = await fx.ctx({ Dockerfile: dockerfile });
    const r = await runMain(['--root', fx.root, 'build', '--no-cache', '--progress', 'plain', ...args, dir], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdin: Readable.from([stdin ?? '']),
    });
    return { code: r.code, log: r.stderr };
  };
  const show = 'FROM busybox:local\nRUN --mount=type=secret,id=tok echo "[$(cat /run/secrets/tok)]"\n';

  it('takes a secret from env=VAR, from type=env,src=VAR, and from a variable named like the id', async () => {
    for (const [args, env] of [
      [['--secret', 'id=tok,env=MY_TOKEN'], { MY_TOKEN: 'from-env' }],
      [['--secret', 'type=env,id=tok,src=MY_TOKEN'], { MY_TOKEN: 'from-env' }],
      [['--secret', 'id=tok'], { tok: 'from-env' }],
    ] as const) {
      const r = await build(show, [...args], env);
      expect(r.code, r.log).toBe(0);
      expect(r.log).toContain('[from-env]');
    }
  });

  it('an unset variable leaves the secret out: a required mount fails, an optional one is skipped', async () => {
    const required = await build('FROM busybox:local\nRUN --mount=type=secret,id=tok,required=true echo never\n', ['--secret', 'id=tok,env=UNSET_VAR']);
    expect(required.code).not.toBe(0);
    expect(required.log).toContain('secret tok is required');
    const optional = await build('FROM busybox:local\nRUN --mount=type=secret,id=tok ls /run/secrets/tok || echo skipped\n', ['--secret', 'id=tok,env=UNSET_VAR']);
    expect(optional.code, optional.log).toBe(0);
    expect(optional.log).toContain('skipped');
  });

  it('refuses unknown keys, unknown types, a missing file and one over 500 KB before building', async () => {
    const dir = await tempDir('secret-cli');
    fx.cleanup.push(dir);
    await writeFile(join(dir, 'big'), Buffer.alloc(600 * 1024));
    for (const [spec, message] of [
      ['id=tok,sauce=x', "unexpected key 'sauce'"],
      ['id=tok,type=vault', 'unsupported secret type "vault"'],
      [`id=tok,src=${join(dir, 'nope')}`, `failed to stat ${join(dir, 'nope')}`],
      [`id=tok,src=${join(dir, 'big')}`, 'max size 500KB'],
      ['src=/etc/hostname', 'needs id=ID'],
    ]) {
      const r = await build(show, ['--secret', spec as string]);
      expect(r.code, spec).toBe(2);
      expect(r.log).toContain(message);
    }
  });

  it('-f - reads the Dockerfile from stdin, errors naming its lines as Dockerfile', async () => {
    const ok = await build('FROM scratch\n', ['-f', '-'], {}, 'FROM busybox:local\nRUN echo from-stdin\n');
    expect(ok.code, ok.log).toBe(0);
    expect(ok.log).toContain('from-stdin');
    const bad = await build('FROM scratch\n', ['-f', '-'], {}, 'FROM busybox:local\nRUNN echo x\n');
    expect(bad.code).not.toBe(0);
    expect(bad.log).toMatch(/Dockerfile:2/);
  });
});

// A static client: connects to $SSH_AUTH_SOCK, sends "ping", prints the reply (busybox nc has no unix sockets).
const CLIENT = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  const char *p = getenv("SSH_AUTH_SOCK");
  int ids = argc > 1 && !strcmp(argv[1], "ids");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (!p) return 2;
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
  if (ids) { /* SSH2_AGENTC_REQUEST_IDENTITIES; the answer is type 12 then a uint32 count */
    unsigned char req[5] = {0, 0, 0, 1, 11}, r[9];
    if (write(s, req, 5) != 5 || read(s, r, 9) != 9) return 1;
    printf("type=%d keys=%d\\n", r[4], r[8]);
    return 0;
  }
  if (write(s, "ping", 4) != 4) return 1;
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n <= 0) return 1;
  buf[n] = 0;
  printf("%s\\n", buf);
  return 0;
}
`;

describe('RUN --mount=type=ssh', () => {
  let agent = '';
  let server: Server;
  let clientDir = '';
  let key = '';
  beforeAll(async () => {
    const dir = await tempDir('agent');
    fx.cleanup.push(dir);
    agent = join(dir, 'agent.sock');
    server = createServer((c) => c.on('data', (d) => c.end(`pong:${d.toString()}`)));
    await new Promise<void>((resolve) => server.listen(agent, resolve));
    clientDir = await fx.ctx({ 'client.c': CLIENT });
    execFileSync('cc', ['-static', '-O1', '-o', join(clientDir, 'client'), join(clientDir, 'client.c')]);
    key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('forwards the agent at /run/buildkit/ssh_agent.0 with SSH_AUTH_SOCK set, root 0600 by default', async () => {
    await writeFile(join(clientDir, 'Dockerfile'), [
      'FROM busybox:local',
      'COPY client /client',
      'RUN --mount=type=ssh echo "$SSH_AUTH_SOCK" && stat -c "%a %u %g %F" "$SSH_AUTH_SOCK" && /client',
      'RUN --mount=type=ssh,id=other,target=/agent,uid=1000,mode=0660 stat -c "%a %u %F" /agent && SSH_AUTH_SOCK=/agent /client',
    ].join('\n'));
    const { events, result } = await runBuild(fx.store, { contextDir: clientDir, ssh: { default: [agent], other: [agent] }, noCache: true });
    expect(logOf(events)).toBe('/run/buildkit/ssh_agent.0\n600 0 0 socket\npong:ping\n660 1000 socket\npong:ping\n');
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect((await view.resolve('/run/buildkit', false)).entry).toBeUndefined();
    expect((await view.resolve('/agent', false)).entry).toBeUndefined();
  });

  it('--ssh ID=KEY serves the key from an agent of our own for the step; an encrypted key is a clear error', async () => {
    await writeFile(join(clientDir, 'Dockerfile'), 'FROM busybox:local\nCOPY client /client\nRUN --mount=type=ssh,id=k,required /client ids\n');
    const { events } = await runBuild(fx.store, { contextDir: clientDir, ssh: { k: [key] }, noCache: true });
    expect(logOf(events)).toBe('type=12 keys=1\n');
    const locked = `${key}-locked`;
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'pass phrase', '-f', locked]);
    await expect(runBuild(fx.store, { contextDir: clientDir, ssh: { k: [locked] }, noCache: true })).rejects.toMatchObject({
      code: 'USAGE', line: 3, message: expect.stringContaining(`--ssh k: cannot load ${locked}`) as unknown,
    });
  });

  it('without --ssh: an optional mount is left out, a required one fails naming the line', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" || echo no-agent\nRUN --mount=type=ssh,id=deploy,required echo never\n' });
    const err = await failure(runBuild(fx.store, { contextDir: dir }));
    expect(err).toMatchObject({ code: 'USAGE', line: 3, message: expect.stringContaining('no SSH agent "deploy" was forwarded') as unknown });
    expect(err.hint).toContain('--ssh deploy=SOCKET');
    const src = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=ssh,source=x true\n' });
    await expect(runBuild(fx.store, { contextDir: src })).rejects.toMatchObject({ code: 'DOCKERFILE', line: 2, message: expect.stringContaining('ssh does not support source') as unknown });
  });

  it('tsbuild build --ssh default takes $SSH_AUTH_SOCK; key files and a missing agent are usage errors', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=ssh,required test -S "$SSH_AUTH_SOCK" && echo agent-ok\n' });
    const cli = await runCli(['--root', fx.root, 'build', '--progress', 'plain', '--no-cache', '--ssh', 'default', dir], { SSH_AUTH_SOCK: agent });
    expect(cli.stderr).toContain('agent-ok');
    expect(cli.code).toBe(0);
    expect(parseSshSpecs(['default', `git=${agent}`, `k=${key},${key}`], { SSH_AUTH_SOCK: agent })).toEqual({ default: [agent], git: [agent], k: [key, key] });
    expect(() => parseSshSpecs(['default'], {})).toThrow(/SSH_AUTH_SOCK is not set/);
    expect(() => parseSshSpecs([`default=${clientDir}`], {})).toThrow(/is neither an SSH agent socket nor a private key file/);
    expect(() => parseSshSpecs([`default=${agent},${key}`], {})).toThrow(/is neither/);
  });
});
