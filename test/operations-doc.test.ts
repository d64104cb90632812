/**
 * docs/operations.md's admin examples (blocks marked `sh admin-example`) run with bash and curl
 * against a real server, in the order written: revoke, delete, list, and the webhook signature
 * check on a body signed as the server signs it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { signature } from '../apps/server/src/webhooks/delivery.js';
import { serverPerTest, TEST_SECRET, testToken } from './helpers/server.js';
import { RawClient } from './fixtures/relay-clients.js';

const run = promisify(execFile);
const scope = serverPerTest();
afterEach(() => scope.close());

const ADMIN_TOKEN = 'admin-token-for-the-docs-test-0123456789';
const doc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/```sh admin-example\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe('docs/operations.md admin examples', () => {
  it('has the examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it('each example runs against a real server and does what the text says', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN });
    const token = await testToken('user-1234', ['acme-*']);
    const victim = await RawClient.connect(`${server.wsUrl}/relay/acme-conversation-7f3c2a10?token=${token}`);
    scope.track(victim);
    await victim.next((m) => m.type === 'sync-step1');
    // A stored room for the listing examples.
    const writer = await RawClient.connect(`${server.wsUrl}/relay/acme-conversation-1?token=${await testToken('bob', ['acme-*'])}`);
    scope.track(writer);
    await writer.next((m) => m.type === 'sync-step1');
    const d = new Y.Doc();
    d.getText('t').insert(0, 'hello');
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(d))));
    await writer.handled();
    await server.app.relayRooms.drain();
    const body = JSON.stringify({ type: 'room.changed', room: 'acme-conversation-1', at: 1, updates: 1 });
    const env = {
      ...process.env,
      SYNC_URL: server.url,
      ADMIN_TOKEN,
      WEBHOOK_SECRET: 'webhook-secret-of-the-docs-test',
      BODY: body,
      SIGNATURE: signature('webhook-secret-of-the-docs-test', body),
    };
    const outputs: string[] = [];
    for (const block of blocks) {
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', block], { env, timeout: 10_000 });
      outputs.push(stdout);
    }
    expect(JSON.parse(outputs[0] as string)).toMatchObject({ revoked: { sub: 'user-1234' }, closed: 1 });
    expect(await victim.closed()).toBe(4401);
    expect(JSON.parse(outputs[1] as string)).toMatchObject({ revoked: { jti: 'device-42' } });
    expect(JSON.parse(outputs[2] as string)).toEqual({ deleted: true, closed: 0, instances: 1 });
    expect(outputs[3]).toContain('"rooms":[{"room":"acme-conversation-1"');
    expect(outputs[3]).toContain('"connections":1');
    expect(outputs[4]).toBe('signature ok\n');
  });
});
