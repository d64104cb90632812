/**
 * The y-websocket wire protocol (what stock y-websocket clients and servers speak), as a pure
 * codec: readRelayMessage turns one frame into a typed message or a typed error, and the
 * writeX functions append a message to an encoder the caller owns. No sockets, timers or logs.
 *
 *   message      := messageType • payload
 *   sync         := 0 • (step1 • stateVector | step2 • update | update • update)   (varUint8Array)
 *   awareness    := 1 • varUint8Array(awarenessUpdate)
 *   auth         := 2 • 0 (permission denied) • varString(reason)
 *   queryAware   := 3
 *   awarenessUpdate := varUint(n) • n × (varUint(clientID) • varUint(clock) • varString(json))
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

export const RelayMessageType = { Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3 } as const;
export const RelaySyncType = { Step1: 0, Step2: 1, Update: 2 } as const;
export const RelayAuthType = { PermissionDenied: 0 } as const;

export type RelayMessage =
  | { type: 'sync-step1'; stateVector: Uint8Array }
  | { type: 'sync-step2'; update: Uint8Array }
  | { type: 'update'; update: Uint8Array }
  | { type: 'awareness'; update: Uint8Array }
  | { type: 'query-awareness' }
  | { type: 'auth'; authType: number; reason: string }
  | { type: 'unknown'; messageType: number };

export type RelayDecodeErrorKind = 'empty' | 'truncated' | 'trailing_bytes' | 'unknown_sync_type' | 'bad_awareness';

export interface RelayDecodeError {
  error: RelayDecodeErrorKind;
  detail: string;
}

export type RelayDecodeResult = { ok: true; message: RelayMessage } | { ok: false; error: RelayDecodeError };

export interface AwarenessEntry {
  clientID: number;
  clock: number;
  /** the state as JSON text; "null" means the client left */
  json: string;
  removed: boolean;
}

/** Decode one frame. Never throws: bad input is a typed error value. */
export function readRelayMessage(frame: Uint8Array): RelayDecodeResult {
  if (frame.length === 0) return fail('empty', 'empty frame');
  const decoder = decoding.createDecoder(frame);
  let message: RelayMessage | RelayDecodeError;
  try {
    message = readBody(decoder);
  } catch (err) {
    return fail('truncated', err instanceof Error ? err.message : String(err));
  }
  if ('error' in message) return { ok: false, error: message };
  // Unknown types are skipped whole (as the stock server does), so their rest is not checked.
  if (message.type !== 'unknown' && decoding.hasContent(decoder)) {
    return fail('trailing_bytes', `${frame.length - decoder.pos} bytes after the message`);
  }
  return { ok: true, message };
}

function readBody(decoder: decoding.Decoder): RelayMessage | RelayDecodeError {
  const messageType = decoding.readVarUint(decoder);
  switch (messageType) {
    case RelayMessageType.Sync:
      return readSync(decoder);
    case RelayMessageType.Awareness:
      return { type: 'awareness', update: decoding.readVarUint8Array(decoder) };
    case RelayMessageType.Auth:
      return readAuth(decoder);
    case RelayMessageType.QueryAwareness:
      return { type: 'query-awareness' };
    default:
      return { type: 'unknown', messageType };
  }
}

function readSync(decoder: decoding.Decoder): RelayMessage | RelayDecodeError {
  const syncType = decoding.readVarUint(decoder);
  const payload = decoding.readVarUint8Array(decoder);
  switch (syncType) {
    case RelaySyncType.Step1:
      return { type: 'sync-step1', stateVector: payload };
    case RelaySyncType.Step2:
      return { type: 'sync-step2', update: payload };
    case RelaySyncType.Update:
      return { type: 'update', update: payload };
    default:
      return { error: 'unknown_sync_type', detail: `sync message type ${syncType}` };
  }
}

function readAuth(decoder: decoding.Decoder): RelayMessage {
  const authType = decoding.readVarUint(decoder);
  const reason = authType === RelayAuthType.PermissionDenied ? decoding.readVarString(decoder) : '';
  return { type: 'auth', authType, reason };
}

/** Decode and check an awareness update (JSON included) without applying it. */
export function readAwarenessUpdate(update: Uint8Array): { ok: true; entries: AwarenessEntry[] } | { ok: false; error: RelayDecodeError } {
  const decoder = decoding.createDecoder(update);
  const entries: AwarenessEntry[] = [];
  try {
    const count = decoding.readVarUint(decoder);
    for (let i = 0; i < count; i++) {
      const clientID = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      const json = decoding.readVarString(decoder);
      const state: unknown = JSON.parse(json);
      entries.push({ clientID, clock, json, removed: state === null });
    }
  } catch (err) {
    return fail('bad_awareness', err instanceof Error ? err.message : String(err));
  }
  if (decoding.hasContent(decoder)) return fail('bad_awareness', 'trailing bytes in awareness update');
  return { ok: true, entries };
}

/**
 * Whether a state's JSON text (UTF-8) is `null`, JSON whitespace around it allowed: what
 * y-protocols' JSON.parse takes as a removal. Read without decoding the text.
 */
export function isNullJson(raw: Uint8Array): boolean {
  let start = 0;
  let end = raw.length;
  while (start < end && isJsonSpace(raw[start] as number)) start++;
  while (end > start && isJsonSpace(raw[end - 1] as number)) end--;
  return end - start === 4 && raw[start] === 0x6e && raw[start + 1] === 0x75 && raw[start + 2] === 0x6c && raw[start + 3] === 0x6c;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * An awareness update of these entries (the awarenessUpdate above, y-protocols' encoding). A state
 * given as bytes is written as they are: a varString is its UTF-8 bytes as a varUint8Array, so a
 * state passed on unread (packages/client/src/heard-clients.ts) keeps its bytes.
 */
export function encodeAwarenessEntries(entries: ReadonlyArray<{ clientID: number; clock: number; json: string | Uint8Array }>): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const entry of entries) {
    encoding.writeVarUint(encoder, entry.clientID);
    encoding.writeVarUint(encoder, entry.clock);
    if (typeof entry.json === 'string') encoding.writeVarString(encoder, entry.json);
    else encoding.writeVarUint8Array(encoder, entry.json);
  }
  return encoding.toUint8Array(encoder);
}

export function writeRelaySyncStep1(encoder: encoding.Encoder, stateVector: Uint8Array): void {
  writeSync(encoder, RelaySyncType.Step1, stateVector);
}

export function writeRelaySyncStep2(encoder: encoding.Encoder, update: Uint8Array): void {
  writeSync(encoder, RelaySyncType.Step2, update);
}

export function writeRelayUpdate(encoder: encoding.Encoder, update: Uint8Array): void {
  writeSync(encoder, RelaySyncType.Update, update);
}

export function writeRelayAwareness(encoder: encoding.Encoder, awarenessUpdate: Uint8Array): void {
  encoding.writeVarUint(encoder, RelayMessageType.Awareness);
  encoding.writeVarUint8Array(encoder, awarenessUpdate);
}

export function writeRelayQueryAwareness(encoder: encoding.Encoder): void {
  encoding.writeVarUint(encoder, RelayMessageType.QueryAwareness);
}

/** The y-protocols auth "permission denied" message, sent before a 4401/4403 close. */
export function writeRelayPermissionDenied(encoder: encoding.Encoder, reason: string): void {
  encoding.writeVarUint(encoder, RelayMessageType.Auth);
  encoding.writeVarUint(encoder, RelayAuthType.PermissionDenied);
  encoding.writeVarString(encoder, reason);
}

/** One message as bytes: encode once, send the same bytes to every receiver. */
export function encodeRelayMessage(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function writeSync(encoder: encoding.Encoder, syncType: number, payload: Uint8Array): void {
  encoding.writeVarUint(encoder, RelayMessageType.Sync);
  encoding.writeVarUint(encoder, syncType);
  encoding.writeVarUint8Array(encoder, payload);
}

function fail(error: RelayDecodeErrorKind, detail: string): { ok: false; error: RelayDecodeError } {
  return { ok: false, error: { error, detail } };
}
