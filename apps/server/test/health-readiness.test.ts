/**
 * /readyz needs no credentials: with PostgreSQL unreachable (a TCP proxy in front of it, cut) it
 * answers 503 naming the check with a fixed word, never the database error's text (host, port,
 * user, database), which goes to the log as a warning. A flood of /readyz and /status.json runs
 * the checks once per second, not once per request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest } from '../../../test/helpers/server.js';
import { TcpProxy } from '../../../test/fixtures/scale-proxy.js';
import { PG_URL, schemaForThisFile, urlWithSchema } from './postgres-helpers.js';

const scope = serverPerTest();
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await scope.close();
  for (const p of proxies.splice(0)) await p.close();
});
const schema = schemaForThisFile('ready');

describe('/readyz answers', () => {
  it('PostgreSQL cut off: 503 with checks.storage "failed" or "timeout", the error text only in a warning', async () => {
    const pg = new URL(PG_URL);
    const proxy = new TcpProxy(() => [Number(pg.port || 5432)]);
    proxies.push(proxy);
    const port = await proxy.listen();
    const viaProxy = new URL(urlWithSchema(schema));
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(port);
    const server = await scope.start({ STORAGE: 'postgres', DATABASE_URL: viaProxy.toString() });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    await proxy.cut();
    let res: Response | null = null;
    for (let i = 0; i < 60; i++) {
      res = await fetch(`${server.url}/readyz`);
      if (res.status === 503) break;
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res?.status).toBe(503);
    const text = await res!.text();
    for (const leak of [String(port), '127.0.0.1', 'ECONNREFUSED', 'postgres', schema, pg.username || 'postgres']) expect(text).not.toContain(leak);
    const body = JSON.parse(text) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('unavailable');
    expect(['failed', 'timeout']).toContain(body.checks['storage']);
    for (const v of Object.values(body.checks)) expect(['ok', 'failed', 'timeout']).toContain(v);
    const warned = server.logs.filter((l) => l['msg'] === 'readiness check failed' && l['check'] === 'storage');
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned[0]).toMatchObject({ level: 40, err: expect.stringContaining('postgres') as string });
    expect(String(warned[0]?.['err']).length).toBeLessThanOrEqual(300);
  });

  it('a flood of /readyz and /status.json runs the checks once per second, not per request', async () => {
    const server = await scope.start({ STORAGE: 'memory' });
    let runs = 0;
    server.app.sync.readiness.register('counted', async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 50));
    });
    const flood = () =>
      Promise.all([
        ...Array.from({ length: 60 }, () => fetch(`${server.url}/readyz`).then((r) => r.status)),
        ...Array.from({ length: 20 }, () => fetch(`${server.url}/status.json`).then((r) => r.status)),
      ]);
    const statuses = await flood();
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(runs).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 1100));
    const before = runs;
    await flood();
    expect(runs - before).toBeGreaterThanOrEqual(1);
    expect(runs - before).toBeLessThanOrEqual(2);
  });
});
