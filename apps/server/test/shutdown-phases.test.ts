/** Shutdown phases in-process: order, failure isolation, readiness during drain, 1012 to open sockets. */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Lifecycle } from '../src/lifecycle/shutdown.js';
import { serverPerTest } from '../../../test/helpers/server.js';

const scope = serverPerTest();
afterEach(() => scope.close());

describe('Lifecycle', () => {
  it('runs drain, sockets, release in order, once', async () => {
    const lifecycle = new Lifecycle();
    const order: string[] = [];
    lifecycle.on('release', () => void order.push('release'));
    lifecycle.on('sockets', () => void order.push('sockets'));
    lifecycle.on('drain', async () => {
      await Promise.resolve();
      order.push('drain');
    });
    const errors: unknown[] = [];
    const first = lifecycle.shutdown((_phase, err) => errors.push(err));
    const second = lifecycle.shutdown((_phase, err) => errors.push(err));
    expect(second).toBe(first);
    await first;
    expect(order).toEqual(['drain', 'sockets', 'release']);
    expect(errors).toEqual([]);
    expect(lifecycle.shuttingDown).toBe(true);
  });

  it('reports a failing hook (sync throw or rejection) and still runs the later phases', async () => {
    const lifecycle = new Lifecycle();
    const ran: string[] = [];
    lifecycle.on('drain', () => {
      throw new Error('sync failure');
    });
    lifecycle.on('drain', () => Promise.reject(new Error('async failure')));
    lifecycle.on('drain', () => void ran.push('other drain hook'));
    lifecycle.on('release', () => void ran.push('release'));
    const errors: Array<[string, string]> = [];
    await lifecycle.shutdown((phase, err) => errors.push([phase, (err as Error).message]));
    expect(errors).toEqual([
      ['drain', 'sync failure'],
      ['drain', 'async failure'],
    ]);
    expect(ran).toEqual(['other drain hook', 'release']);
  });
});

describe('server close()', () => {
  it('answers /readyz 503 during drain and closes WebSockets with 1012 after it', async () => {
    const server = await scope.start();
    const { app, url, wsUrl } = server;
    const ws = new WebSocket(`${wsUrl}/signal`);
    await once(ws, 'open');
    const closeCode = once(ws, 'close').then(([code]) => code as number);

    // Observe from inside the drain phase: sockets must still be open, readiness must be 503.
    let duringDrain: { status: number; body: unknown; socketOpen: boolean } | undefined;
    app.sync.lifecycle.on('drain', async () => {
      const res = await fetch(`${url}/readyz`);
      duringDrain = { status: res.status, body: await res.json(), socketOpen: ws.readyState === WebSocket.OPEN };
    });
    await server.close();
    expect(duringDrain).toEqual({
      status: 503,
      body: { status: 'unavailable', checks: expect.objectContaining({ shutdown: 'shutting down' }) as unknown },
      socketOpen: true,
    });
    expect(await closeCode).toBe(1012);
  });
});
