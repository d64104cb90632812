/**
 * The thing to beat: one malformed frame kills the stock y-webrtc server process; the same
 * frames against ours close only the sender's socket with 4400.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { RawClient } from './signaling-client.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const KILLERS = ['{"type":"subscribe",', '{"type":"subscribe","topics":"not-an-array"}'];

const scope = serverPerTest();
afterEach(() => scope.close());

describe('malformed frames: stock server vs ours', () => {
  it.each(KILLERS)('%s kills the stock server process', async (frame) => {
    const port = await freePort();
    const child = spawn(process.execPath, ['node_modules/y-webrtc/bin/server.js'], { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
      await withTimeout(new Promise<void>((done) => child.stdout.on('data', (d: Buffer) => d.toString().includes('running') && done())), 10_000, 'stock server start');
      const c = await RawClient.open(`ws://127.0.0.1:${port}`);
      c.send(frame);
      expect(await withTimeout(exited, 10_000, 'stock server exit')).not.toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each(KILLERS)('%s closes only that socket on ours', async (frame) => {
    const server = await scope.start();
    const bystander = await RawClient.open(`${server.wsUrl}/signal`);
    const c = await RawClient.open(`${server.wsUrl}/signal`);
    c.send(frame);
    expect((await c.closedWithin()).code).toBe(4400);
    await bystander.roundTrip();
    await bystander.close();
  });
});
