/**
 * SQLite backup and restore as docs/operations.md describes them, with the bundled
 * runtime: a stock y-websocket client writes through the server; sqlite-backup.mjs copies
 * the database while the server runs and after a graceful stop; the data directory is
 * wiped, the backup copied back, the restore step for sealed rooms run (sealed-restore.mjs),
 * and a fresh server serves the document again.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { createRoomToken } from '@sync-suite/shared';
import { bundle } from '../deploy/bundle.js';
import { SMOKE_SECRETS, startStack, type Stack } from '../deploy/ci/stack.js';
import { docUntil, stockProvider, synced } from './fixtures/relay-clients.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sync-backup-'));
const out = join(work, 'app');
const dataDir = join(work, 'data');
const ROOM = 'acme-conversation-backup-1';
let stack: Stack | undefined;

const start = () => startStack({ root, cwd: out, dataDir, args: (app) => [join(out, `${app}.mjs`)] });

async function backup(dest: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [join(out, 'sqlite-backup.mjs'), dest], {
    cwd: out,
    env: { PATH: process.env['PATH'], DATA_DIR: dataDir },
    timeout: 15_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** Connects a stock client, runs `use`, and disconnects. */
async function withClient(use: (doc: Y.Doc) => Promise<void>): Promise<void> {
  const token = await createRoomToken(SMOKE_SECRETS.AUTH_SECRET, { sub: 'backup', rooms: [ROOM], ttlSeconds: 60 });
  const doc = new Y.Doc();
  const provider = stockProvider(3, (stack as Stack).serverUrl.replace('http', 'ws'), ROOM, doc, { token });
  try {
    await synced(provider);
    await use(doc);
  } finally {
    provider.destroy();
    doc.destroy();
  }
}

beforeAll(async () => {
  await bundle(out);
  stack = await start();
});

afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('SQLite backup and restore', () => {
  it('backs up online, restores into an empty data directory, and the document comes back', async () => {
    await withClient(async (doc) => {
      doc.getText('text').insert(0, 'kept across restore');
      // A second client seeing the text proves the relay accepted the update.
      const reader = new Y.Doc();
      const p = stockProvider(3, (stack as Stack).serverUrl.replace('http', 'ws'), ROOM, reader, {
        token: await createRoomToken(SMOKE_SECRETS.AUTH_SECRET, { sub: 'reader', rooms: [ROOM], ttlSeconds: 60 }),
      });
      await docUntil(reader, () => reader.getText('text').toString() === 'kept across restore');
      p.destroy();
      reader.destroy();
    });

    const backups = join(work, 'backups');
    mkdirSync(backups);
    // While the server runs: consistent copy, integrity checked.
    expect(await backup(join(backups, 'online.sqlite'))).toMatchObject({ integrity: 'ok' });
    // Graceful stop commits everything; this copy must hold the room.
    expect(await (stack as Stack).stop()).toEqual({ server: 0, turn: 0 });
    const offline = await backup(join(backups, 'offline.sqlite'));
    expect(offline).toMatchObject({ integrity: 'ok', rooms: 1 });
    await expect(backup(join(backups, 'offline.sqlite'))).rejects.toThrow(/refusing to overwrite/);

    // Restore: empty data directory, the backup copied in as the database file.
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir);
    copyFileSync(join(backups, 'offline.sqlite'), join(dataDir, 'sync-relay.sqlite'));
    // The restore step for sealed rooms, from the bundle (it starts sqlite-worker.mjs beside it);
    // this database has no sealed room. packages/client/test/sealed-restore.test.ts: what it does to one.
    const { stdout } = await run(process.execPath, [join(out, 'sealed-restore.mjs')], { cwd: out, env: { PATH: process.env['PATH'], DATA_DIR: dataDir }, timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({ storage: 'sqlite', file: join(dataDir, 'sync-relay.sqlite'), newGenerations: 0 });
    stack = await start();
    await withClient(async (doc) => {
      expect(doc.getText('text').toString()).toBe('kept across restore');
    });
  });
});
