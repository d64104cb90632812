/**
 * StdoutLines on a real FIFO with a reader that stops, comes back and goes away: lines go out
 * whole and in order, what the pipe refuses is held up to the bound and written once it takes
 * bytes again, what does not fit is dropped and counted, and no flush ever waits.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StdoutLines } from '../../src/logging/stdout-destination.js';

const fds: number[] = [];
const outs: StdoutLines[] = [];
let dir: string | undefined;
afterEach(() => {
  for (const out of outs.splice(0)) out.dispose();
  for (const fd of fds.splice(0)) closeSync(fd);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A FIFO's two ends, both non-blocking (as node leaves a pipe on stdout). */
function fifo(): { reader: number; writer: number } {
  dir = mkdtempSync(join(tmpdir(), 'stdout-lines-'));
  const path = join(dir, 'fifo');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  fds.push(reader, writer);
  return { reader, writer };
}

/** Everything the FIFO holds now. */
function drain(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n = 0;
    try {
      n = readSync(fd, buf);
    } catch {
      break; // EAGAIN: empty
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Each number larger than the one before: in order, none twice. */
function expectIncreasing(got: number[]): void {
  for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1] as number);
}

/** The numbers of the lines in `text`; every line must be whole JSON. */
function numbers(text: string): number[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { n: number }).n);
}

const line = (i: number, size: number): string => `{"n":${i},"pad":"${'x'.repeat(size)}"}\n`;

/** Reads until `done` says the text is complete, or fails after 10 s (the retry runs every 100 ms). */
async function readUntil(fd: number, done: (text: string) => boolean): Promise<string> {
  let text = '';
  const deadline = Date.now() + 10_000;
  while (!done(text)) {
    if (Date.now() > deadline) throw new Error(`timed out; read ${text.length} chars`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    text += drain(fd);
  }
  return text;
}

describe('StdoutLines', () => {
  it('holds what a full pipe refuses, drops past the bound, and writes the rest whole and in order once read again', async () => {
    const { reader, writer } = fifo();
    const out = new StdoutLines(writer, 64 * 1024);
    outs.push(out);
    const sent: number[] = [];
    // About 640 KB of 1 KB lines into a 64 KB pipe with 64 KB of hold: most are dropped.
    for (let i = 0; i < 640; i++) {
      out.write(line(i, 1000));
      sent.push(i);
    }
    expect(out.dropped).toBeGreaterThan(400);
    // The reader takes what the pipe holds; a line written now must still go after the held ones.
    let text = drain(reader);
    out.write(line(640, 10)); // small enough to fit in what the hold has left
    sent.push(640);
    const kept = sent.length - out.dropped;
    text += await readUntil(reader, (t) => (text + t).split('\n').length - 1 >= kept);
    const got = numbers(text);
    expect(got).toHaveLength(kept);
    expectIncreasing(got); // in order, none twice
    expect(got.at(-1)).toBe(640);
    expect(got.slice(0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // the first lines went straight out
    // Once drained, a line goes straight out again.
    out.write(line(1000, 10));
    expect(drain(reader)).toBe(line(1000, 10));
  });

  it('keeps hundreds of held lines whole and in order while the reader drains them in rounds', async () => {
    const { reader, writer } = fifo();
    const out = new StdoutLines(writer, 1 << 20);
    outs.push(out);
    // 700 lines of about 1 KB: 64 KB go to the pipe, over 600 are held (more than one writev's 256).
    for (let i = 0; i < 700; i++) out.write(line(i, 1000));
    expect(out.dropped).toBe(0);
    let text = '';
    for (let round = 0; round < 40 && numbersIn(text) < 700; round++) {
      text += drain(reader); // the pipe is emptied, then refilled by a flush that stops short
      out.flushSync();
    }
    text += await readUntil(reader, (t) => numbersIn(text + t) >= 700);
    const got = numbers(text);
    expect(got).toHaveLength(700);
    expectIncreasing(got);
    out.write(line(700, 10)); // all written: straight out again
    expect(drain(reader)).toBe(line(700, 10));
  });

  it('holds the rest of a line the pipe took only part of, even past the bound: a line is never torn', async () => {
    const { reader, writer } = fifo();
    const out = new StdoutLines(writer, 1000);
    outs.push(out);
    out.write(line(0, 100_000)); // the pipe takes 64 KB of it; the rest is far over the 1,000-byte bound
    out.write(line(1, 10)); // fits in nothing more: dropped
    expect(out.dropped).toBe(1);
    const text = await readUntil(reader, (t) => numbersIn(t) >= 1);
    expect(numbers(text)).toEqual([0]);
  });

  it('never waits in a flush: a full pipe, then a pipe without a reader (EPIPE)', () => {
    const { reader, writer } = fifo();
    const out = new StdoutLines(writer, 1 << 20);
    outs.push(out);
    for (let i = 0; i < 200; i++) out.write(line(i, 1000)); // 200 KB into 64 KB: the rest is held
    const started = Date.now();
    out.flushSync(); // the pipe is still full: returns at once
    closeSync(reader);
    fds.splice(fds.indexOf(reader), 1);
    out.write(line(200, 10)); // held behind the others
    out.flushSync(); // EPIPE: returns
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(out.dropped).toBe(0);
  });

  it('holds a line that meets EPIPE with nothing held before it, without throwing', () => {
    const { reader, writer } = fifo();
    const out = new StdoutLines(writer, 1 << 20);
    outs.push(out);
    closeSync(reader);
    fds.splice(fds.indexOf(reader), 1);
    expect(() => out.write(line(0, 10))).not.toThrow(); // writeSync meets EPIPE
    expect(() => out.flushSync()).not.toThrow();
    expect(out.dropped).toBe(0);
  });
});

/** How many whole lines `text` holds. */
function numbersIn(text: string): number {
  return text.split('\n').length - 1;
}
