/**
 * Numbers lib0's readVarUint reads past 2^53 - 1, as a hostile member writes them
 * (src/update-screen.ts), and a trap that catches them arriving in a document or an awareness
 * before anything encodes them: without the screen a test then fails, instead of hanging in
 * lib0's writeVarUint(Infinity) while the encoder's buffer doubles until allocation fails.
 */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import type { Awareness } from 'y-protocols/awareness';

/** 146 continuation bytes that add nothing, then 0x7f: lib0 reads Infinity */
export const INFINITY_VARUINT = Uint8Array.from([...(new Array(146).fill(0x80) as number[]), 0x7f]);
/** 7 continuation bytes, then 0x10: lib0 reads 2^53 */
export const TWO_POW_53_VARUINT = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);

const CLIENT = 77;

/**
 * A real one-item update (text in the root type `forged`, which the chat fixture does not read)
 * whose client id is `id` (raw varuint bytes). One struct with a root parent: Yjs integrates it
 * at once, so without the screen the client lands in the store (no pending structs to encode).
 */
export function updateWithClient(id: Uint8Array, text = 'forged'): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = CLIENT;
  doc.getText('forged').insert(0, text);
  const u = Y.encodeStateAsUpdate(doc);
  // v1: one section, one struct, then the client id (one byte for 77)
  if (u[0] !== 1 || u[1] !== 1 || u[2] !== CLIENT) throw new Error('unexpected update layout');
  return Uint8Array.from([...u.subarray(0, 2), ...id, ...u.subarray(3)]);
}

/** An awareness update of one entry whose client id is `id` (raw varuint bytes). */
export function awarenessWithClient(id: Uint8Array, clock: number, state: unknown): Uint8Array {
  return encoding.encode((e) => {
    encoding.writeVarUint(e, 1);
    encoding.writeUint8Array(e, id);
    encoding.writeVarUint(e, clock);
    encoding.writeVarString(e, JSON.stringify(state));
  });
}

/** Clients that are not safe integers, in the document's store and the awareness' states. */
export function unsafeClients(doc: Y.Doc, awareness?: Awareness): number[] {
  const keys = [...doc.store.clients.keys(), ...(awareness ? awareness.states.keys() : [])];
  return keys.filter((k) => !Number.isSafeInteger(k));
}

/**
 * Records every client that is not a safe integer reaching `doc` or `awareness` and removes it
 * before anything encodes it: in the document as soon as the transaction integrated it (before
 * observers, 'afterTransaction' and the 'update' event: throwing there would leave Yjs's
 * transaction cleanup undone for good), in the awareness on 'change' (thrown, before
 * y-protocols' 'update').
 */
export function trapUnsafeClients(doc: Y.Doc, awareness: Awareness | undefined, caught: (what: string) => void): void {
  doc.on('beforeObserverCalls', (transaction: Y.Transaction) => {
    const bad = unsafeClients(doc);
    if (bad.length === 0) return;
    for (const k of bad) {
      doc.store.clients.delete(k);
      transaction.afterState.delete(k);
    }
    caught(`document client ${bad.join(', ')}`);
  });
  awareness?.on('change', () => {
    const bad = [...awareness.states.keys()].filter((k) => !Number.isSafeInteger(k));
    if (bad.length === 0) return;
    for (const k of bad) {
      awareness.states.delete(k);
      awareness.meta.delete(k);
    }
    caught(`awareness client ${bad.join(', ')}`);
    throw new Error(`trap: awareness client ${bad.join(', ')}`);
  });
}
