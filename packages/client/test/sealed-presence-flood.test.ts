/**
 * A member holding the room key, with a read-only token, floods presence: each sealed presence
 * envelope names thousands of awareness client ids. The server cannot read presence (it caps
 * client ids per connection only on /relay, RELAY_MAX_AWARENESS_STATES), so every device of the
 * room applied them all: states piled up at the message rate for the 30 s awareness timeout
 * (millions, with each a JSON state and an 'update' event the app and y-webrtc re-broadcast).
 * A device takes at most SEALED_MAX_CLIENTS_PER_PEER client ids from one server connection
 * (src/sealed/presence.ts). In-process server, a real SealedTransport, the member a raw socket.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedPresence } from '@sync-suite/shared';
import { startServer, testToken, TEST_SECRET } from '../../../test/helpers/server.js';
import { EnvelopeKind, SealedKeys } from '../src/sealed/envelope.js';
import { SEALED_MAX_CLIENTS_PER_PEER } from '../src/sealed/presence.js';
import { SealedTransport } from '../src/sealed/transport.js';
import { awarenessUpdate, type AwarenessEntry } from './helpers/forged-awareness.js';
import { until } from './helpers/until.js';

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket;
const ROOM = 'acme-conversation-presence-flood';
const KEY = new Uint8Array(32).fill(5);
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

it("a read-only member's presence naming thousands of client ids adds at most a few states on the other devices", async () => {
  const server = await startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation' });
  cleanup.push(() => server.close());

  const doc = new Y.Doc();
  const awareness = new Awareness(doc);
  cleanup.push(() => awareness.destroy());
  awareness.setLocalState({ user: 'alice' });
  let caught = false;
  const t = new SealedTransport({
    sealedBase: `${server.wsUrl}/sealed`,
    room: ROOM,
    doc,
    awareness,
    key: KEY,
    WebSocket,
    getToken: () => testToken('alice', [ROOM]),
    onChange: () => (caught ||= t.synced),
    onTokenError: () => undefined,
    onRefused: () => undefined,
    onSealedError: () => undefined,
  });
  cleanup.push(() => t.destroy());
  t.connect();
  await until(async () => caught, 'alice caught up');

  // mallory: the key, a read-only token
  const keys = new SealedKeys(ROOM, KEY);
  const atk = new WebSocket(`${server.wsUrl}/sealed/${ROOM}?token=${await testToken('mallory', [ROOM], { scope: 'read' })}`);
  cleanup.push(() => atk.close());
  let atkCaught = false;
  atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
  atk.on('message', (data: Buffer) => {
    const r = readSealedServerMessage(new Uint8Array(data));
    if (r.ok && r.message.type === 'caught-up') atkCaught = true;
  });
  await until(async () => atkCaught, 'mallory caught up');

  const PER_ENVELOPE = 1500; // ~10 bytes an entry: one envelope under SEALED_MAX_PRESENCE_BYTES (16 KiB)
  const ENVELOPES = 20;
  let next = 1_000_000;
  for (let i = 0; i < ENVELOPES; i++) {
    const entries: AwarenessEntry[] = Array.from({ length: PER_ENVELOPE }, () => [next++, 1, {}]);
    const envelope = keys.seal(EnvelopeKind.Presence, awarenessUpdate(entries));
    atk.send(encodeSealedMessage((e) => writeSealedPresence(e, envelope)));
  }
  // then the first id it named, at a later clock, with a state to wait for (taken either way)
  const marker = keys.seal(EnvelopeKind.Presence, awarenessUpdate([[1_000_000, 2, { user: 'mallory' }]]));
  atk.send(encodeSealedMessage((e) => writeSealedPresence(e, marker)));
  await until(async () => [...awareness.getStates().values()].some((s) => s['user'] === 'mallory') || awareness.getStates().size > PER_ENVELOPE * ENVELOPES, "mallory's last presence applied", 20_000);

  // alice's own state, and at most the cap from mallory's one connection (not 30 000)
  expect(awareness.getStates().size).toBeLessThanOrEqual(1 + SEALED_MAX_CLIENTS_PER_PEER);
  expect(awareness.getLocalState()).toEqual({ user: 'alice' });
});
