/** The tar reader reads what Go's archive/tar users (docker, containerd, BuildKit) read. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BLOCK, paddingFor } from '../../src/layers/tar/header.js';
import { readTar } from '../../src/layers/tar/reader.js';
import { makeTar } from './fixtures.js';

/** A PAX global header ('g') block and its records. */
function globalHeader(records: Record<string, string>): Buffer {
  const body = Buffer.from(
    Object.entries(records)
      .map(([k, v]) => {
        const rec = ` ${k}=${v}\n`;
        let len = rec.length + 1;
        while (`${len}${rec}`.length !== len) len++;
        return `${len}${rec}`;
      })
      .join(''),
  );
  // A valid ustar header for a file of body.length bytes, retyped 'g' with its checksum redone.
  const head = Buffer.from(makeTar([{ name: 'pax_global_header', data: body.toString('latin1') }]).subarray(0, BLOCK));
  head[156] = 'g'.charCodeAt(0);
  head.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of head) sum += b;
  head.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return Buffer.concat([head, body, paddingFor(body.length)]);
}

async function entries(tar: Buffer): Promise<{ name: string; size: number; data: string }[]> {
  const out: { name: string; size: number; data: string }[] = [];
  for await (const { header, body } of readTar(Readable.from([tar]))) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c);
    out.push({ name: header.name, size: header.size, data: Buffer.concat(chunks).toString() });
  }
  return out;
}

describe('readTar', () => {
  it('ignores a PAX global header: its path and size do not rename or re-frame later entries', async () => {
    const tar = Buffer.concat([globalHeader({ path: 'etc/passwd', size: '3' }), makeTar([{ name: 'd1/', type: 'dir' }, { name: 'f1', data: 'one' }, { name: 'f2', data: 'root::0:0::/:/bin/sh' }])]);
    expect(await entries(tar)).toEqual([
      { name: 'd1/', size: 0, data: '' },
      { name: 'f1', size: 3, data: 'one' },
      { name: 'f2', size: 20, data: 'root::0:0::/:/bin/sh' },
    ]);
  });

  it('says "not a tar" for bytes whose checksum field is not even a number', async () => {
    const junk = Buffer.alloc(BLOCK * 2, 1);
    await expect(entries(junk)).rejects.toThrow(/checksum mismatch \(corrupt or not a tar\)/);
  });
});
