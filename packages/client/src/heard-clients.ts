/**
 * Which awareness clients one path has carried a state for (a relay socket, a WebRTC peer), as
 * last heard on that path: a state adds the client, a removal (state null) drops it. The relay's
 * close then removes only the clients it carried that no WebRTC peer still carries
 * (relay-presence.ts), instead of every client but our own as y-websocket does.
 *
 * Only the client ids are read (each state is skipped as bytes, not parsed): y-protocols parses
 * the update itself. What does not decode is ignored here; the stock handler deals with it.
 * The set grows only with clients the path named, as the Awareness's own maps do.
 */
import * as decoding from 'lib0/decoding';
import { encodeAwarenessEntries, isNullJson, RelayMessageType } from '@sync-suite/shared';

export class HeardClients {
  private readonly present = new Set<number>();

  /** An awareness update (y-protocols' encoding: count, then client id, clock and JSON state each). */
  noteUpdate(update: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(update);
      const count = decoding.readVarUint(decoder);
      // every entry takes at least 3 bytes: a count beyond that is malformed and ends in a throw
      for (let i = 0; i < count; i++) {
        const client = decoding.readVarUint(decoder);
        decoding.readVarUint(decoder);
        const state = decoding.readVarUint8Array(decoder);
        if (isNullJson(state)) this.present.delete(client); // JSON null: the client left
        else this.present.add(client);
      }
    } catch {
      // malformed: what decoded so far is noted (the stock handler may apply as much)
    }
  }

  /** A whole y-webrtc / y-websocket message: noted if it is an awareness message. */
  noteMessage(message: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(message);
      if (decoding.readVarUint(decoder) !== RelayMessageType.Awareness) return;
      this.noteUpdate(decoding.readVarUint8Array(decoder));
    } catch {
      // not an awareness message we can read
    }
  }

  has(client: number): boolean {
    return this.present.has(client);
  }

  get clients(): number[] {
    return [...this.present];
  }

  clear(): void {
    this.present.clear();
  }
}

/**
 * The update without its removals of clients `keep` says to keep (undefined: nothing to drop, or
 * malformed, which the stock handler deals with). The relay announces a client's removal when that
 * device's relay socket closes, though it may still be with us over WebRTC.
 */
export function withoutRemovals(update: Uint8Array, keep: (client: number) => boolean): Uint8Array | undefined {
  try {
    const decoder = decoding.createDecoder(update);
    const count = decoding.readVarUint(decoder);
    // each state stays bytes (json): passed on as it came
    const entries: Array<{ clientID: number; clock: number; json: Uint8Array }> = [];
    let dropped = false;
    for (let i = 0; i < count; i++) {
      const entry = { clientID: decoding.readVarUint(decoder), clock: decoding.readVarUint(decoder), json: decoding.readVarUint8Array(decoder) };
      if (isNullJson(entry.json) && keep(entry.clientID)) dropped = true;
      else entries.push(entry);
    }
    return dropped ? encodeAwarenessEntries(entries) : undefined;
  } catch {
    return undefined;
  }
}
