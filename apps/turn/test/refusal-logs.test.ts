/**
 * What a refused request may cost in the log (src/log-budget.ts): anyone can send signed
 * requests with bad credentials, from spoofed addresses, and any token holder can ask for denied
 * peers, so the 'credentials refused', 'allocation refused' and 'peer denied' warn lines are
 * budgeted per kind and the rest counted; logged usernames
 * are cut; a USERNAME of 509 bytes or more is refused before any HMAC (src/credentials.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LOGGED_USERNAME_MAX } from '../src/log-budget.js';
import { openStunClient, turnPerTest, type TestTurn } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());
const client = (creds: { username: string; credential: string }) => openStunClient(scope, creds);

/** Resolve once `done(logs)` holds, checked at every log line; fail after `timeoutMs`. */
function logsUntil(t: TestTurn, done: (logs: TestTurn['logs']) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (done(t.logs)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      t.events.off('log', onLog);
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const onLog = () => {
      if (!done(t.logs)) return;
      clearTimeout(timer);
      t.events.off('log', onLog);
      resolve();
    };
    t.events.on('log', onLog);
  });
}

const lines = (t: TestTurn, msg: string) => t.logs.filter((l) => l['msg'] === msg);
const suppressedOf = (t: TestTurn, kind: string) =>
  lines(t, 'log lines suppressed').filter((l) => l['kind'] === kind).reduce((n, l) => n + Number(l['suppressed']), 0);

/**
 * Each interval (the lines between two suppression reports of `kind`) holds at most `perInterval`
 * lines of `kind`: true whatever the interval boundaries fell on during the burst.
 */
function perIntervalCounts(t: TestTurn, kind: string): number[] {
  const counts = [0];
  for (const l of t.logs) {
    if (l['msg'] === kind) counts[counts.length - 1]!++;
    else if (l['msg'] === 'log lines suppressed' && l['kind'] === kind) counts.push(0);
  }
  return counts;
}

describe('refusal log budget', () => {
  it('1,000 refused credentials write at most TURN_REFUSAL_LOGS_PER_MINUTE warn lines and report the rest as suppressed', async () => {
    const t = await scope.start({ TURN_REFUSAL_LOGS_PER_MINUTE: '5' }, { logIntervalMs: 1000 });
    const bad = { username: t.creds('m'.repeat(400)).username, credential: 'not-the-password' };
    const c = await client(bad);
    for (let batch = 0; batch < 10; batch++) {
      const replies = await Promise.all(Array.from({ length: 100 }, () => c.allocate()));
      for (const r of replies) expect(r.code).toBe(401);
    }
    expect(await t.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(1000);
    const written = () => lines(t, 'credentials refused').length;
    await logsUntil(t, () => written() + suppressedOf(t, 'credentials refused') === 1000, 'every refusal written or reported');
    for (const count of perIntervalCounts(t, 'credentials refused')) expect(count).toBeLessThanOrEqual(5);
    expect(written()).toBeGreaterThan(0);
    for (const l of lines(t, 'credentials refused')) {
      expect(String(l['username']).length).toBeLessThanOrEqual(LOGGED_USERNAME_MAX);
      expect(bad.username.startsWith(String(l['username']).slice(0, -1))).toBe(true);
      expect(l['level']).toBe(40);
    }
    // no line of this run is near the size of what a client sends
    for (const line of t.text().split('\n')) expect(line.length).toBeLessThan(1024);
  });

  it('allocation refusals (quota) have their own budget', async () => {
    const t = await scope.start({ TURN_USER_QUOTA: '1', TURN_REFUSAL_LOGS_PER_MINUTE: '2' }, { logIntervalMs: 1000 });
    expect((await (await client(t.creds('alice'))).allocate()).cls).toBe(2);
    for (let i = 0; i < 10; i++) expect((await (await client(t.creds('alice'))).allocate()).code).toBe(486);
    const written = () => lines(t, 'allocation refused').length;
    await logsUntil(t, () => written() + suppressedOf(t, 'allocation refused') === 10, 'every allocation refusal written or reported');
    for (const count of perIntervalCounts(t, 'allocation refused')) expect(count).toBeLessThanOrEqual(2);
    expect(String(lines(t, 'allocation refused')[0]?.['username'])).toMatch(/:alice$/);
  });

  it('an authenticated client asking for denied peers has its own budget', async () => {
    const t = await scope.start({ TURN_REFUSAL_LOGS_PER_MINUTE: '3' }, { logIntervalMs: 1000 });
    const c = await client(t.creds('alice'));
    expect((await c.allocate()).cls).toBe(2);
    for (let i = 0; i < 20; i++) expect((await c.permit('10.1.2.3')).code).toBe(403);
    expect(await t.metric('turn_denied_peers_total')).toBe(20);
    const written = () => lines(t, 'peer denied').length;
    await logsUntil(t, () => written() + suppressedOf(t, 'peer denied') === 20, 'every denied peer written or reported');
    for (const count of perIntervalCounts(t, 'peer denied')) expect(count).toBeLessThanOrEqual(3);
    expect(String(lines(t, 'peer denied')[0]?.['username'])).toMatch(/:alice$/);
  });
});

describe('USERNAME length (RFC 8489 section 14.3: fewer than 509 bytes)', () => {
  it('a 60 KB username is refused with 401 before any HMAC, even with the right password, and logged cut', async () => {
    const t = await scope.start();
    // the right credential: had its HMAC been checked, the Allocate would succeed
    const long = t.creds('x'.repeat(60_000));
    const reply = await (await client(long)).allocate();
    expect(reply.code).toBe(401);
    expect(await t.metric('turn_auth_failures_total{reason="username_too_long"}')).toBe(1);
    expect(await t.metric('turn_allocations')).toBe(0);
    const refused = lines(t, 'credentials refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ reason: 'username_too_long' });
    expect(String(refused[0]!['username']).length).toBeLessThanOrEqual(LOGGED_USERNAME_MAX);
    for (const line of t.text().split('\n')) expect(line.length).toBeLessThan(1024);
    // a 508-byte username is still checked and allocates
    const sub = 'y'.repeat(508 - `${Math.floor(Date.now() / 1000) + 600}:`.length);
    const fits = t.creds(sub);
    expect(Buffer.byteLength(fits.username)).toBe(508);
    expect((await (await client(fits)).allocate()).cls).toBe(2);
  });
});
