/**
 * Checks that bytes are a well-formed Yjs update (every struct, its content and the delete set
 * decode) before they come near a room's shared document.
 */
import * as Y from 'yjs';

export type UpdateCheck = { ok: true } | { ok: false; reason: string };

/** Yjs decoders throw on bad input; turn that into a reason. */
function decodes(decode: () => unknown): UpdateCheck {
  try {
    decode();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

export function checkUpdate(update: Uint8Array): UpdateCheck {
  return decodes(() => Y.decodeUpdate(update));
}

export function checkStateVector(stateVector: Uint8Array): UpdateCheck {
  return decodes(() => Y.decodeStateVector(stateVector));
}
