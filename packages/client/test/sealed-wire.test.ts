/**
 * What the server and the wire see of a sealed room: unique markers written into documents and
 * presence never appear in the SQLite file (and its WAL), the server's debug logs, or the bytes
 * between devices and server (recorded through a TCP proxy); a frame tampered with in flight is
 * rejected by the device, which keeps syncing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { WireProxy } from '../../../test/fixtures/wire-proxy.js';
import { SQLITE_FILE_NAME } from '../../../apps/server/src/relay/persistence/sqlite.js';
import { PeerProcess } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const scope = serverPerTest();
const dirs: string[] = [];
afterEach(async () => {
  await scope.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const KEY = randomBytes(32).toString('hex');

function peer(name: string): PeerProcess {
  const p = new PeerProcess(name, { TOKEN_SECRET: TEST_SECRET });
  scope.track(p);
  return p;
}

async function proxied(): Promise<{ proxy: WireProxy; url: string }> {
  const proxy = new WireProxy(scope.current.port);
  scope.track(proxy);
  return { proxy, url: await proxy.listen() };
}

const start = (p: PeerProcess, url: string, room: string): Promise<unknown> =>
  p.send('start', { serverUrl: url, room, relayGraceMs: 500, blockWebrtc: true, sealedKey: KEY });

describe('sealed rooms: nothing in plaintext', () => {
  it('document and presence markers never reach the SQLite file, its WAL, the debug logs or the wire', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealed-markers-'));
    dirs.push(dataDir);
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, STORAGE: 'sqlite', DATA_DIR: dataDir, LOG_LEVEL: 'debug', SEALED_SNAPSHOT_AFTER: '4', PERSIST_FLUSH_MS: '20' });
    const { proxy, url } = await proxied();
    const room = 'test-conversation-sealed-markers';
    const docMarker = `DOCMARK${randomBytes(6).toString('hex')}`;
    const presenceMarker = `PRESMARK${randomBytes(6).toString('hex')}`;
    const [a, b] = [peer('phone'), peer('desktop')];
    await Promise.all([start(a, url, room), start(b, url, room)]);
    await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
    const texts: string[] = [];
    for (let i = 0; i < 8; i++) {
      texts.push(`${docMarker} message ${i}`);
      await a.send('push', { text: texts[i] });
    }
    await a.send('presence', { note: presenceMarker });
    await b.waitTexts(texts);
    await until(async () => ((await b.send('state')) as { notes: string[] }).notes.includes(presenceMarker), 'the presence marker at the desktop');
    // a third device loads from storage (snapshot + tail) through the proxy as well
    const c = peer('tablet');
    await start(c, url, room);
    await c.waitTexts(texts);

    const haystacks: Record<string, Buffer> = {
      wire: proxy.bytes(),
      logs: Buffer.from(JSON.stringify(server.logs)),
      sqlite: readFileSync(join(dataDir, SQLITE_FILE_NAME)),
    };
    const wal = join(dataDir, `${SQLITE_FILE_NAME}-wal`);
    if (existsSync(wal)) haystacks['sqlite-wal'] = readFileSync(wal);
    expect(Object.keys(haystacks)).toContain('sqlite-wal');
    // the search works: what sealed rooms do not hide (the room name) is found where it travels
    expect(haystacks['wire']?.includes(room)).toBe(true);
    expect(Buffer.concat([haystacks['sqlite'] as Buffer, haystacks['sqlite-wal'] ?? Buffer.alloc(0)]).includes(room)).toBe(true);
    expect(server.logs.some((l) => l['level'] === 20)).toBe(true); // debug lines were written
    for (const [where, bytes] of Object.entries(haystacks)) {
      for (const marker of [docMarker, presenceMarker, 'message 3']) expect(bytes.includes(marker), `${marker} in ${where}`).toBe(false);
    }
  });

  it('an entry tampered with in flight is reported and applied to nothing; the device keeps syncing', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const { proxy, url } = await proxied();
    const room = 'test-conversation-sealed-tamper';
    const [a, b] = [peer('phone'), peer('desktop')];
    await start(a, scope.current.url, room); // direct
    await start(b, url, room); // through the proxy
    await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
    proxy.tamperEntries(1);
    await a.send('push', { text: 'tampered' });
    const error = await b.waitFor((e) => e.ev === 'error' && e['source'] === 'sealed', 'the tampered entry reported');
    expect(String(error['message'])).toMatch(/does not open/);
    expect(proxy.tampered).toBe(1);
    // the damaged frame was applied to nothing; the device read the stored copy again
    await b.waitTexts(['tampered']);
    expect(b.events.filter((e) => e.ev === 'messages').map((e) => e['texts'])).toEqual([['tampered']]);
    await a.send('push', { text: 'after' });
    await b.waitTexts(['tampered', 'after']);
  });
});
