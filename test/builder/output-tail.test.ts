/** The "last output" of a failed RUN: whole lines, however the process's writes were cut. */
import { describe, expect, it } from 'vitest';
import { OutputTail } from '../../src/builder/step-run.js';

describe('OutputTail', () => {
  it('joins a line cut across chunks and a character cut across chunks', () => {
    const tail = new OutputTail();
    const text = Buffer.from('cat: /nonexistent/file: No such file — gone\nnext\n');
    const cut = text.indexOf('—') + 1; // inside the three bytes of the dash
    tail.push('stderr', text.subarray(0, 5));
    tail.push('stderr', text.subarray(5, cut));
    tail.push('stderr', text.subarray(cut));
    expect(tail.last(10)).toEqual(['cat: /nonexistent/file: No such file — gone', 'next']);
  });

  it('keeps each stream its own unfinished line, and the unfinished ones show at the end', () => {
    const tail = new OutputTail();
    tail.push('stdout', Buffer.from('+ set -x trace '));
    tail.push('stderr', Buffer.from('err one\nerr '));
    tail.push('stdout', Buffer.from('continues\nlast out'));
    tail.push('stderr', Buffer.from('two'));
    expect(tail.last(10)).toEqual(['err one', '+ set -x trace continues', 'last out', 'err two']);
    expect(tail.last(2)).toEqual(['last out', 'err two']);
  });

  it('holds a bounded number of lines', () => {
    const tail = new OutputTail();
    for (let i = 0; i < 10_000; i++) tail.push('stdout', Buffer.from(`line ${i}\n`));
    expect(tail.last(3)).toEqual(['line 9997', 'line 9998', 'line 9999']);
  });
});
