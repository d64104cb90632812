/**
 * A relay peer's awareness update naming this device (src/awareness-guard.ts, through
 * src/relay-presence.ts in front of y-websocket's handler): stock y-protocols replaced this
 * device's own state with it, and a clock of 2^53 - 1 froze ours, so every device ignored our
 * later presence. A WebSocket server in this test plays the relay and forwards what a hostile
 * member would send.
 */
import { afterEach, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { Awareness } from 'y-protocols/awareness';
import { WebsocketProvider } from 'y-websocket';
import { RelayMessageType } from '@sync-suite/shared';
import { keepLivePresenceOnClose } from '../src/relay-presence.js';
import { awarenessUpdate, expectForgedClaimsDropped, forgedClaims, type AwarenessEntry } from './helpers/forged-awareness.js';
import { until } from './helpers/until.js';

// The ws this package resolves is an older major without the named WebSocketServer export.
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & { Server: typeof WsServer };
const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

/** awareness message: type, then the update */
function awarenessMessage(entries: AwarenessEntry[]): Uint8Array {
  return encoding.encode((e) => {
    encoding.writeVarUint(e, RelayMessageType.Awareness);
    encoding.writeVarUint8Array(e, awarenessUpdate(entries));
  });
}

/** the clocks the device announced for `client` in the awareness messages it sent */
function announced(messages: Uint8Array[], client: number): number[] {
  const clocks: number[] = [];
  for (const m of messages) {
    const d = decoding.createDecoder(m);
    if (decoding.readVarUint(d) !== RelayMessageType.Awareness) continue;
    const u = decoding.createDecoder(decoding.readVarUint8Array(d));
    const n = decoding.readVarUint(u);
    for (let i = 0; i < n; i++) {
      const id = decoding.readVarUint(u);
      const clock = decoding.readVarUint(u);
      decoding.readVarString(u);
      if (id === client) clocks.push(clock);
    }
  }
  return clocks;
}

it("a relay peer's awareness naming this device, or with a clock where it stops counting, is dropped; this device announces itself above the claim", async () => {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  opened.push({ close: () => wss.close() });
  const sent: Uint8Array[] = [];
  const socket = new Promise<WsSocket>((resolve) =>
    wss.once('connection', (ws) => {
      ws.on('message', (data: Buffer) => sent.push(new Uint8Array(data)));
      resolve(ws);
    }),
  );
  const doc = new Y.Doc();
  const awareness = new Awareness(doc);
  awareness.setLocalStateField('user', 'alice');
  const { port } = wss.address() as { port: number };
  const provider = new WebsocketProvider(`ws://127.0.0.1:${port}/relay`, 'acme-conversation-guard', doc, { awareness, WebSocketPolyfill: WebSocket as never, disableBc: true });
  opened.push({ close: () => provider.destroy() });
  keepLivePresenceOnClose(provider, () => false);
  const relay = await socket;
  await until(async () => announced(sent, awareness.clientID).length > 0, 'own presence');
  const own = awareness.clientID;
  const clock = (): number => awareness.meta.get(own)?.clock ?? -1;
  const before = clock();
  relay.send(awarenessMessage(forgedClaims(own)));
  await expectForgedClaimsDropped(awareness, before);
  // a claim under the limit: dropped too, and this device's own state goes out above it
  relay.send(awarenessMessage([[own, 1000, { user: 'eve again' }]]));
  await until(async () => announced(sent, own).includes(1001), 'own presence announced at 1001');
  expect(awareness.getLocalState()).toEqual({ user: 'alice' });
});
