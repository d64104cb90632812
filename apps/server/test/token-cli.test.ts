/**
 * `npm run token -- --sub alice --room 'the-boss-conversation-*' --ttl 3600` prints a token
 * that verifyRoomToken and the running server accept.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createRoomToken, verifyRoomToken } from '@sync-suite/shared';
import { baseEnv, exitWithin, runProcess, type RunningProcess } from '../../../test/helpers/process.js';
import { TEST_SECRET, startServer, type TestServer } from '../../../test/helpers/server.js';

let proc: RunningProcess | undefined;
let server: TestServer | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await proc?.kill();
  await server?.close();
  proc = undefined;
  server = undefined;
});

/** Run the npm script as a user would; returns exit code, stdout's last line and stderr. */
async function npmToken(args: string[], env: Record<string, string>): Promise<{ code: number | null; last: string; stderr: string }> {
  proc = runProcess('npm', ['run', 'token', '--', ...args], baseEnv(env));
  const { code } = await exitWithin(proc, 30_000);
  const lines = proc.stdout().split('\n').filter((l) => l.trim().length > 0);
  return { code, last: lines.at(-1) ?? '', stderr: proc.stderr() };
}

/** Open /signal with the token; resolve 'open' after a ping/pong round trip, or the close code. */
async function signalWith(token: string, topic: string): Promise<'accepted' | number> {
  const ws = new WebSocket(`${server?.wsUrl}/signal?token=${encodeURIComponent(token)}`);
  sockets.push(ws);
  const closed = once(ws, 'close').then(([code]) => code as number);
  await Promise.race([once(ws, 'open'), closed]);
  if (ws.readyState !== WebSocket.OPEN) return closed;
  ws.send(JSON.stringify({ type: 'subscribe', topics: [topic] }));
  ws.send(JSON.stringify({ type: 'ping' }));
  const pong = new Promise<'accepted'>((resolve) => {
    ws.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type?: string }).type === 'pong') resolve('accepted');
    });
  });
  return Promise.race([pong, closed]);
}

describe('npm run token', () => {
  it('prints a token that verifyRoomToken and the server accept', async () => {
    const { code, last } = await npmToken(['--sub', 'alice', '--room', 'the-boss-conversation-*', '--ttl', '3600'], { AUTH_SECRET: TEST_SECRET });
    expect(code).toBe(0);
    expect(last).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const now = Math.floor(Date.now() / 1000);
    const result = await verifyRoomToken(last, [TEST_SECRET]);
    expect(result).toMatchObject({ ok: true, claims: { sub: 'alice', rooms: ['the-boss-conversation-*'], scope: 'write' } });
    if (result.ok) expect(Math.abs(result.claims.exp - (now + 3600))).toBeLessThan(60);

    server = await startServer({ AUTH_SECRET: TEST_SECRET });
    expect(await server.app.sync.auth.verify(last, 'relay')).toMatchObject({ ok: true });
    expect(await signalWith(last, 'the-boss-conversation-1')).toBe('accepted');
    // The same token does not open rooms outside its pattern, and a forged one is refused.
    expect(await signalWith(last, 'the-boss-assistant-1')).toBe(4403);
    const forged = await createRoomToken('another-secret-of-at-least-32-bytes!!', { sub: 'alice', rooms: ['*'], ttlSeconds: 60 });
    expect(await signalWith(forged, 'the-boss-conversation-1')).toBe(4401);
  });

  it('makes read-scoped tokens for several rooms', async () => {
    const { code, last } = await npmToken(['--sub', 'tv', '--room', 'a-conversation-1', '--room', 'a-preference-*', '--scope', 'read', '--ttl', '60'], {
      AUTH_SECRET: TEST_SECRET,
    });
    expect(code).toBe(0);
    expect(await verifyRoomToken(last, [TEST_SECRET])).toMatchObject({
      ok: true,
      claims: { sub: 'tv', rooms: ['a-conversation-1', 'a-preference-*'], scope: 'read' },
    });
  });

  it.each([
    ['no AUTH_SECRET', ['--sub', 'a', '--room', 'r'], {}, /AUTH_SECRET/],
    ['no --sub', ['--room', 'r'], { AUTH_SECRET: TEST_SECRET }, /--sub/],
    ['no --room', ['--sub', 'a'], { AUTH_SECRET: TEST_SECRET }, /--room/],
    ['bad --ttl', ['--sub', 'a', '--room', 'r', '--ttl', 'soon'], { AUTH_SECRET: TEST_SECRET }, /--ttl/],
    ['bad --scope', ['--sub', 'a', '--room', 'r', '--scope', 'admin'], { AUTH_SECRET: TEST_SECRET }, /--scope/],
    ['unknown flag', ['--subject', 'a', '--room', 'r'], { AUTH_SECRET: TEST_SECRET }, /Unknown option '--subject'/],
    ['short secret', ['--sub', 'a', '--room', 'r'], { AUTH_SECRET: 'short' }, /at least 32 bytes/],
  ])('refuses with exit 1: %s', async (_label, args, env, message) => {
    const { code, stderr } = await npmToken(args, env);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
  });
});
