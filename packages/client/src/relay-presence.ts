/**
 * Presence when the relay socket closes. The two stock providers share one Awareness, and
 * y-websocket's close handler (closeWebsocketConnection in node_modules/y-websocket/src/y-websocket.js)
 * removes every state but our own, so peers still connected over WebRTC vanished (cursors,
 * "online") until their next renewal, up to 15 s later. That handler emits 'connection-close'
 * first and does its disconnect work only `if (provider.wsconnected)`: a 'connection-close'
 * listener does that work itself (wsconnected, synced, the removal, the 'disconnected' status,
 * as y-websocket 3.1 does) with the removal narrowed to the clients this relay socket carried
 * that no WebRTC peer still carries (`stillLive`), and the stock block is skipped. y-websocket is
 * not changed; a client that neither path carried any more leaves by the awareness timeout (30 s).
 *
 * The same holds for the relay's own announcement that a device left (its relay socket closed,
 * e.g. released because WebRTC carries the room): a removal of a client a WebRTC peer still
 * carries is dropped from the update; that device's own leaving reaches us over WebRTC. Entries
 * naming this device, or with a clock past the limit, are dropped first (awareness-guard.ts).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { removeAwarenessStates } from 'y-protocols/awareness';
import type { WebsocketProvider } from 'y-websocket';
import { RelayMessageType } from '@sync-suite/shared';
import { reclaimOwnState, screenAwarenessUpdate } from './awareness-guard.js';
import { HeardClients, withoutRemovals } from './heard-clients.js';

export function keepLivePresenceOnClose(provider: WebsocketProvider, stillLive: (client: number) => boolean): void {
  const heard = new HeardClients();
  const stock = provider.messageHandlers[RelayMessageType.Awareness];
  if (!stock) throw new Error('y-websocket has no awareness message handler');
  provider.messageHandlers[RelayMessageType.Awareness] = (encoder, decoder, p, emitSynced, messageType) => {
    const update = peekUpdate(decoder);
    if (!update) return stock(encoder, decoder, p, emitSynced, messageType);
    // a relay peer must not set (or freeze) this device's own state: awareness-guard.ts
    const screened = screenAwarenessUpdate(update, provider.awareness, false);
    const safe = screened.update ?? update;
    heard.noteUpdate(safe);
    const kept = withoutRemovals(safe, stillLive) ?? screened.update;
    if (!kept) return stock(encoder, decoder, p, emitSynced, messageType);
    decoding.readVarUint8Array(decoder);
    stock(encoder, decoding.createDecoder(encoding.encode((e) => encoding.writeVarUint8Array(e, kept))), p, emitSynced, messageType);
    reclaimOwnState(provider.awareness, screened.ownClaim);
  };
  provider.on('connection-close', () => {
    if (!provider.wsconnected) return heard.clear();
    provider.wsconnected = false;
    provider.synced = false;
    const own = provider.doc.clientID;
    const gone = heard.clients.filter((client) => client !== own && !stillLive(client));
    heard.clear();
    removeAwarenessStates(provider.awareness, gone, provider);
    provider.emit('status', [{ status: 'disconnected' }]);
  });
}

/** The awareness update the stock handler is about to read, without moving its decoder. */
function peekUpdate(decoder: decoding.Decoder): Uint8Array | undefined {
  try {
    return decoding.readVarUint8Array(decoding.clone(decoder));
  } catch {
    // not an update: the stock handler deals with it
    return undefined;
  }
}
