/**
 * PostgreSQL schema, as numbered migrations. Every instance runs them at start: they are
 * applied in one transaction under an advisory lock, so instances starting together neither
 * race on CREATE nor apply a migration twice. Never edit a released migration; add one.
 */
import type { ClientBase } from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'relay rooms, update log and snapshots',
    sql: `
      -- One row per room. Appenders take its row lock for the whole transaction, so a room's
      -- sequence numbers become visible in order (see postgres.ts).
      CREATE TABLE relay_rooms (
        room text PRIMARY KEY,
        appended bigint NOT NULL DEFAULT 0
      );
      CREATE TABLE relay_updates (
        seq bigserial PRIMARY KEY,
        room text NOT NULL,
        data bytea NOT NULL
      );
      CREATE INDEX relay_updates_room_seq ON relay_updates (room, seq);
      CREATE TABLE relay_snapshots (
        room text PRIMARY KEY,
        snapshot bytea NOT NULL,
        through_seq bigint NOT NULL,
        compactions integer NOT NULL DEFAULT 1,
        compacted_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'sealed rooms: opaque envelopes and snapshots',
    sql: `
      -- One row per sealed room: its last sequence number and its snapshot. Appenders take the
      -- row lock and draw the next numbers from head (apps/server/src/sealed/store/postgres.ts).
      CREATE TABLE sealed_rooms (
        room text PRIMARY KEY,
        head bigint NOT NULL DEFAULT 0,
        covers bigint NOT NULL DEFAULT 0,
        snapshot bytea
      );
      CREATE TABLE sealed_entries (
        room text NOT NULL,
        seq bigint NOT NULL,
        envelope bytea NOT NULL,
        PRIMARY KEY (room, seq)
      );
    `,
  },
  {
    version: 3,
    name: 'admin API: room change times and revocations',
    sql: `
      ALTER TABLE relay_rooms ADD COLUMN changed_at timestamptz;
      CREATE TABLE relay_revocations (
        id bigserial PRIMARY KEY,
        sub text,
        jti text,
        until bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX relay_revocations_until ON relay_revocations (until);
    `,
  },
  {
    version: 4,
    name: 'admin API: sealed room change times',
    sql: `
      ALTER TABLE sealed_rooms ADD COLUMN changed_at timestamptz;
    `,
  },
  {
    version: 5,
    name: 'webhooks: the delivery outbox',
    sql: `
      -- Events from when they are due until delivered; times are unix ms (apps/server/src/webhooks/outbox/postgres.ts).
      CREATE TABLE webhook_outbox (
        id bigserial PRIMARY KEY,
        body text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        due_at bigint NOT NULL,
        claimed_until bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at);
    `,
  },
  {
    version: 6,
    name: 'relay snapshots: the stamp of the check compaction ran',
    sql: `
      -- Written with the snapshot by compaction only (apps/server/src/relay/persistence/snapshot-stamp.ts);
      -- rows without one are checked in full on load.
      ALTER TABLE relay_snapshots ADD COLUMN stamp bytea;
    `,
  },
  {
    version: 7,
    name: 'sealed rooms: entry and byte counters',
    sql: `
      -- Kept by append and replaceWithSnapshot in their transaction (apps/server/src/sealed/store/postgres.ts),
      -- so stats is one row and never reads the snapshot. Computed once here from what is stored.
      ALTER TABLE sealed_rooms
        ADD COLUMN entries bigint NOT NULL DEFAULT 0,
        ADD COLUMN entry_bytes bigint NOT NULL DEFAULT 0,
        ADD COLUMN snapshot_bytes bigint;
      UPDATE sealed_rooms SET snapshot_bytes = length(snapshot) WHERE snapshot IS NOT NULL;
      UPDATE sealed_rooms r SET entries = e.n, entry_bytes = e.bytes
      FROM (
        SELECT x.room, count(*) AS n, sum(length(x.envelope)) AS bytes
        FROM sealed_entries x JOIN sealed_rooms y ON y.room = x.room AND x.seq > y.covers
        GROUP BY x.room
      ) e
      WHERE r.room = e.room;
    `,
  },
  {
    version: 8,
    name: 'sealed rooms: generation',
    sql: `
      -- Drawn when a room's row is made, new after a delete (apps/server/src/sealed/store/types.ts,
      -- SealedStore.generation): a device's cursor counts in one generation. Nonzero, below 2^48.
      -- The volatile default gives every existing row its own, and rows an older instance inserts
      -- during a rolling upgrade get one too; this version's inserts draw theirs with node:crypto.
      ALTER TABLE sealed_rooms ADD COLUMN generation bigint NOT NULL
        DEFAULT (1 + floor(random() * 281474976710655))::bigint;
    `,
  },
  {
    version: 9,
    name: 'sealed rooms: deleted generation',
    sql: `
      -- The generation the last purge ended (0: none), kept in the emptied row the purge leaves
      -- (apps/server/src/sealed/store/postgres.ts): only that one is told "room deleted"; another
      -- generation the row never had means storage lost or restored (docs/PROTOCOL-sealed.md).
      ALTER TABLE sealed_rooms ADD COLUMN deleted_generation bigint NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 10,
    name: 'sealed rooms: every deleted generation',
    sql: `
      -- Every generation a purge ended (apps/server/src/sealed/store/postgres.ts purgeRoom): a
      -- device naming any of them is told "room deleted", not only one naming the last. The
      -- column of migration 9 stays written for the instances of the version before during a
      -- rolling upgrade, and is read as deleted too (their purges write only it).
      CREATE TABLE sealed_deleted_generations (
        room text NOT NULL,
        generation bigint NOT NULL,
        PRIMARY KEY (room, generation)
      );
    `,
  },
  {
    version: 11,
    name: 'relay rooms: generation',
    sql: `
      -- Advanced by every purge, which now keeps the room's row (apps/server/src/relay/persistence/postgres.ts):
      -- appends and compactions naming another generation are refused under the row lock they take
      -- anyway. Rooms stored before are in generation 0, as a room without a row.
      ALTER TABLE relay_rooms ADD COLUMN generation bigint NOT NULL DEFAULT 0;
    `,
  },
];

/** Arbitrary constant: the advisory lock namespace of sync-suite migrations. */
const LOCK_NAMESPACE = 0x5975;

/** Applies the migrations this schema lacks; returns the versions applied now. */
export async function migrate(client: ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [LOCK_NAMESPACE]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS relay_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ version: number }>('SELECT version FROM relay_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO relay_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
