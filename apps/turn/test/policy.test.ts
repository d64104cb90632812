import { afterEach, describe, expect, it } from 'vitest';
import { A, METHOD } from './helpers/stun-client.js';
import { turnPassword } from '@sync-suite/shared/node';
import { SECRET, openStunClient, turnPerTest } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());
const client = (creds: { username: string; credential: string }) => openStunClient(scope, creds);

describe('TURN REST credentials', () => {
  it('accepts the current and the previous secret, refuses wrong, expired and malformed with 401', async () => {
    const t = await scope.start({ TURN_SECRET_PREVIOUS: 'the-old-turn-secret-0123456789abc' });
    const ok = await (await client(t.creds('alice'))).allocate();
    expect(ok.cls).toBe(2);
    expect(ok.signed).toBe(true);
    expect((await (await client(t.creds('bob', 600, 'the-old-turn-secret-0123456789abc'))).allocate()).cls).toBe(2);

    const wrong = await (await client({ username: t.creds('mallory').username, credential: 'not-the-password' })).allocate();
    expect(wrong.code).toBe(401);
    const expired = await (await client(t.creds('carol', -5))).allocate();
    expect(expired.code).toBe(401);
    const malformed = await (await client({ username: 'carol', credential: 'x' })).allocate();
    expect(malformed.code).toBe(401);
    const retired = await (await client(t.creds('dave', 600, 'a-secret-nobody-uses'))).allocate();
    expect(retired.code).toBe(401);

    expect(await t.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(2);
    expect(await t.metric('turn_auth_failures_total{reason="expired"}')).toBe(1);
    expect(await t.metric('turn_auth_failures_total{reason="malformed"}')).toBe(1);
    expect(await t.metric('turn_allocations')).toBe(2);
    // logs name the user, never a password or secret
    expect(t.logs.some((l) => l['msg'] === 'allocation created' && String(l['username']).endsWith(':alice'))).toBe(true);
    expect(t.logs.some((l) => l['msg'] === 'credentials refused' && String(l['username']).endsWith(':mallory'))).toBe(true);
    for (const secretish of [t.creds('alice').credential, 'not-the-password', SECRET, 'the-old-turn-secret-0123456789abc']) expect(t.text()).not.toContain(secretish);
  });
});

describe('TURN REST credentials: expiry no further ahead than TURN_TTL_SECONDS', () => {
  // the server hands out credentials living TURN_TTL_SECONDS; a username far ahead (999999999999:victim)
  // could only come from someone holding TURN_SECRET, and would live for centuries
  it('accepts up to TURN_TTL_SECONDS + 60 s ahead, refuses beyond with 401 and counts it', async () => {
    const t = await scope.start({ TURN_TTL_SECONDS: '600' });
    expect((await (await client(t.creds('alice', 600))).allocate()).cls).toBe(2);
    expect((await (await client(t.creds('bob', 600 + 50))).allocate()).cls).toBe(2);
    expect((await (await client(t.creds('mallory', 600 + 70))).allocate()).code).toBe(401);
    const forever = '999999999999:victim';
    expect((await (await client({ username: forever, credential: turnPassword(SECRET, forever) })).allocate()).code).toBe(401);
    expect(await t.metric('turn_auth_failures_total{reason="ttl_too_long"}')).toBe(2);
    expect(await t.metric('turn_allocations')).toBe(2);
  });
});

describe('peer filtering', () => {
  const denied = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254', '224.0.0.1', '0.0.0.0', '::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', 'ff02::1'];

  it('refuses permissions and channel binds toward denied ranges with 403 by default', async () => {
    const t = await scope.start();
    const c = await client(t.creds());
    expect((await c.allocate()).cls).toBe(2);
    for (const ip of denied) expect({ ip, code: (await c.permit(ip)).code }).toEqual({ ip, code: 403 });
    expect((await c.bindChannel(0x4000, '192.168.1.1', 5000)).code).toBe(403);
    expect((await c.bindChannel(0x4001, '127.0.0.1', 5000)).code).toBe(403);
    const allowed = await c.permit('8.8.8.8');
    expect(allowed.cls).toBe(2);
    c.sendIndication('10.0.0.1', 9, Buffer.from('x'));
    expect((await c.request(METHOD.REFRESH, [])).cls).toBe(2); // ordering barrier: the indication was processed
    expect(await t.metric('turn_denied_peers_total')).toBe(denied.length + 3);
    expect(t.logs.some((l) => l['msg'] === 'peer denied' && String(l['username']).endsWith(':alice') && l['peer'] === '169.254.169.254:0')).toBe(true);
  });

  it('TURN_ALLOW_LOOPBACK_PEERS lifts loopback only', async () => {
    const t = await scope.start({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
    const c = await client(t.creds());
    await c.allocate();
    expect((await c.permit('127.0.0.1')).cls).toBe(2);
    expect((await c.permit('127.9.9.9')).cls).toBe(2);
    for (const ip of ['10.0.0.1', '169.254.169.254', '0.0.0.0', '192.168.0.1']) expect((await c.permit(ip)).code).toBe(403);
    // a public IPv6 peer on an IPv4 relay: 443 Peer Address Family Mismatch (RFC 6156)
    expect((await c.permit('2001:4860::8888')).code).toBe(443);
  });

  it('TURN_DENY_PEERS replaces the list (groups and CIDRs)', async () => {
    const t = await scope.start({ TURN_DENY_PEERS: 'loopback,203.0.113.0/24' });
    const c = await client(t.creds());
    await c.allocate();
    expect((await c.permit('203.0.113.7')).code).toBe(403);
    expect((await c.permit('127.0.0.1')).code).toBe(403);
    expect((await c.permit('10.0.0.1')).cls).toBe(2);
  });
});

describe('quotas', () => {
  it('refuses allocations over TURN_USER_QUOTA and TURN_TOTAL_QUOTA with 486, and frees slots on release', async () => {
    const t = await scope.start({ TURN_USER_QUOTA: '2', TURN_TOTAL_QUOTA: '3' });
    const alice = t.creds('alice');
    const [a1, a2, a3] = [await client(alice), await client(alice), await client(alice)];
    expect((await a1!.allocate()).cls).toBe(2);
    expect((await a2!.allocate()).cls).toBe(2);
    expect((await a3!.allocate()).code).toBe(486);
    const bob = t.creds('bob');
    const [b1, b2] = [await client(bob), await client(bob)];
    expect((await b1!.allocate()).cls).toBe(2);
    expect((await b2!.allocate()).code).toBe(486); // total quota: 3 in all
    expect(await t.metric('turn_quota_rejections_total{quota="user"}')).toBe(1);
    expect(await t.metric('turn_quota_rejections_total{quota="total"}')).toBe(1);
    expect(t.logs.some((l) => l['msg'] === 'allocation refused' && l['code'] === 486 && String(l['username']).endsWith(':alice'))).toBe(true);
    // releasing one (Refresh lifetime 0) frees its slot
    expect((await a1!.refresh(0)).get(A.LIFETIME)!.readUInt32BE(0)).toBe(0);
    expect((await a3!.allocate()).cls).toBe(2);
  });

  it('counts TURN_USER_QUOTA per user (the sub of <expiry>:<sub>), not per credential', async () => {
    const t = await scope.start({ TURN_USER_QUOTA: '2' });
    // three credentials for the same sub, each freshly issued with another expiry
    const [c1, c2, c3] = [await client(t.creds('alice', 600)), await client(t.creds('alice', 700)), await client(t.creds('alice', 800))];
    expect((await c1!.allocate()).cls).toBe(2);
    expect((await c2!.allocate()).cls).toBe(2);
    expect((await c3!.allocate()).code).toBe(486);
    expect((await (await client(t.creds('bob', 900))).allocate()).cls).toBe(2);
  });
});
