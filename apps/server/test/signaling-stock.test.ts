/**
 * The thing to beat: one malformed frame kills the stock y-webrtc server process; the same
 * frames against ours close only the sender's socket with 4400.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv, freePort, runProcess } from '../../../test/helpers/process.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { RawClient } from './signaling-client.js';

const KILLERS = ['{"type":"subscribe",', '{"type":"subscribe","topics":"not-an-array"}'];

const scope = serverPerTest();
afterEach(() => scope.close());

describe('malformed frames: stock server vs ours', () => {
  it.each(KILLERS)('%s kills the stock server process', async (frame) => {
    const port = await freePort();
    const stock = runProcess(process.execPath, ['node_modules/y-webrtc/bin/server.js'], baseEnv({ PORT: String(port) }));
    try {
      await stock.waitForLine((l) => String(l['text']).includes('running'), 10_000);
      const c = await RawClient.open(`ws://127.0.0.1:${port}`);
      c.send(frame);
      expect((await withTimeout(stock.exited, 10_000, 'stock server exit')).code).not.toBe(0);
    } finally {
      await stock.kill();
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
