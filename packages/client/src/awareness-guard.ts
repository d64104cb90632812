/**
 * What an awareness update from another device may change: never this device's own state, and
 * no clock where it stops counting. y-protocols' applyAwarenessUpdate takes any entry whose clock
 * is above the known one, this device's own included: a member (any key holder in a sealed room,
 * a read-only one too; any relay peer in a plain room) naming our clientID replaced our own state
 * here, and a clock of 2^53 - 1 froze ours (clock + 1 no longer grows), so every device ignored
 * our later presence. Entries are screened before y-protocols sees them (sealed/presence.ts,
 * relay-presence.ts, webrtc-transport.ts):
 *
 * * An entry naming this device is dropped. When its clock is above ours (someone else speaks for
 *   us), we announce our own state again above it, as y-protocols does when a remote
 *   update removes the local state, so the others show our real state again.
 * * An entry whose clock is above MAX_AWARENESS_CLOCK (or not a number) is dropped. A real
 *   device's clock grows by one per change of its state and starts at 0 with each document:
 *   2^31 - 1 is years of changes at ten a second. Awareness is not signed per device, so a member can still name another
 *   device's clientID at a clock up to the limit and hide that device's presence on the others
 *   (or set it to anything); that device's own announcements, at lower clocks, are ignored
 *   meanwhile, so the forged state lasts until the awareness timeout removes it (30 s) at most.
 * * An entry whose clientID is not a safe integer is dropped: lib0 reads 146 bytes 0x80 then 0x7f
 *   as Infinity, and y-protocols would keep it and encode it again (to every new peer, on each
 *   change), where lib0's writeVarUint(Infinity) never ends (see update-screen.ts).
 * * y-protocols keeps a client's clock after its state is removed (timeout, peer left, relay
 *   removal), which would keep a forged clock at the limit for good: for an entry of another
 *   client with no state here, that clock is forgotten first, so the entry is taken at any clock.
 *   A removal (null state) of a client with no state here is dropped: there is nothing to remove,
 *   and y-protocols would keep its clock for nothing.
 * * A client id named again in the same update is dropped (the first entry stays). y-protocols
 *   lists a client once per entry it applied, and its 'update' listeners (y-webrtc's, y-websocket's)
 *   encode that client's whole state once per listing: 40 000 entries of one client at rising
 *   clocks, then a 100 KB state, made 4 GB of encoding and 30 s of CPU from one 320 KB update.
 *   An honest encoder lists each client once.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as time from 'lib0/time';
import type { Awareness } from 'y-protocols/awareness';
import { encodeAwarenessEntries, isNullJson } from '@sync-suite/shared';

/** what the screen reads and forgets of the awareness it guards */
type Guarded = Pick<Awareness, 'clientID' | 'states' | 'meta'>;

/** the highest awareness clock taken from another device (see above) */
export const MAX_AWARENESS_CLOCK = 2 ** 31 - 1;

/** One entry as read, in the shape encodeAwarenessEntries writes back (packages/shared protocol/relay.ts). */
interface Entry {
  clientID: number;
  clock: number;
  json: Uint8Array;
}

export interface Screened {
  /** the entries that may be applied, re-encoded (undefined: all of them, the update as it came) */
  update: Uint8Array | undefined;
  /** the highest clock of an entry that named this device (undefined: none did) */
  ownClaim: number | undefined;
}

/**
 * Screens an awareness update (y-protocols' encoding: count, then client id, clock and JSON state
 * each) for `awareness`, about to apply it. `keep`: asked last, in order, of each entry otherwise
 * kept, with the byte length of the entry's JSON state (sealed/presence.ts caps the client ids one
 * connection may name; webrtc-transport.ts those and the size of a state). `strict`: a malformed update throws; else the
 * entries decoded before the damage are screened, and when none is dropped the update stays as it
 * came (y-protocols applies as many, then throws as it did without the screen).
 */
export function screenAwarenessUpdate(update: Uint8Array, awareness: Guarded, strict: boolean, keep?: (clientID: number, stateBytes: number) => boolean): Screened {
  const own = awareness.clientID;
  const entries: Entry[] = [];
  try {
    const decoder = decoding.createDecoder(update);
    const count = decoding.readVarUint(decoder);
    for (let i = 0; i < count; i++) {
      entries.push({ clientID: decoding.readVarUint(decoder), clock: decoding.readVarUint(decoder), json: decoding.readVarUint8Array(decoder) });
    }
  } catch (err) {
    if (strict) throw err;
  }
  let ownClaim: number | undefined;
  const named = new Set<number>();
  const kept = entries.filter((e) => {
    // A clock lib0 read as NaN (0x80s then 0x00) passes no comparison: it is no claim, and dropped.
    if (e.clientID === own) {
      if (!Number.isNaN(e.clock)) ownClaim = Math.max(ownClaim ?? 0, e.clock);
      return false;
    }
    if (named.has(e.clientID)) return false;
    named.add(e.clientID);
    if (!Number.isSafeInteger(e.clientID) || !(e.clock <= MAX_AWARENESS_CLOCK)) return false;
    if (awareness.states.has(e.clientID)) return !keep || keep(e.clientID, e.json.byteLength);
    if (isNullJson(e.json)) return false;
    if (keep && !keep(e.clientID, e.json.byteLength)) return false;
    awareness.meta.delete(e.clientID);
    return true;
  });
  if (kept.length === entries.length) return { update: undefined, ownClaim };
  return { update: encodeAwarenessEntries(kept), ownClaim };
}

/**
 * Someone else named this device at `claim`: when that is above our clock, announce our own state
 * again above it (the awareness 'update' event sends it on every path). At our clock it is our
 * own state relayed back (y-webrtc peers pass on every state they hear): nothing to do. Not past
 * the limit: the others would drop it.
 */
export function reclaimOwnState(awareness: Awareness, claim: number | undefined): void {
  if (claim === undefined) return;
  const own = awareness.clientID;
  const meta = awareness.meta.get(own);
  const state = awareness.getLocalState();
  if (!meta || state === null || claim <= meta.clock || claim + 1 > MAX_AWARENESS_CLOCK) return;
  awareness.meta.set(own, { clock: claim, lastUpdated: time.getUnixTime() });
  awareness.setLocalState(state);
}

/**
 * A whole y-websocket / y-webrtc message (type, then the update as bytes): when it is an awareness
 * message (`awarenessType`) with something to drop, the message with the screened update; the
 * claim on this device's state either way. What does not decode is left to the stock handler.
 */
export function screenAwarenessMessage(
  message: unknown,
  awarenessType: number,
  awareness: Guarded,
  keep?: (clientID: number, stateBytes: number) => boolean,
): { message: Uint8Array | undefined; ownClaim: number | undefined } {
  const none = { message: undefined, ownClaim: undefined };
  if (!(message instanceof Uint8Array)) return none;
  let update: Uint8Array;
  try {
    const decoder = decoding.createDecoder(message);
    if (decoding.readVarUint(decoder) !== awarenessType) return none;
    update = decoding.readVarUint8Array(decoder);
  } catch {
    return none;
  }
  const screened = screenAwarenessUpdate(update, awareness, false, keep);
  if (!screened.update) return { message: undefined, ownClaim: screened.ownClaim };
  const kept = screened.update;
  return {
    message: encoding.encode((e) => {
      encoding.writeVarUint(e, awarenessType);
      encoding.writeVarUint8Array(e, kept);
    }),
    ownClaim: screened.ownClaim,
  };
}
