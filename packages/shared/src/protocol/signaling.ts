/**
 * The y-webrtc signaling protocol (docs/PROTOCOL-signaling.md): JSON text frames.
 * Pure codec: no sockets, timers or logs. Reading returns a typed message or a typed
 * error (never throws); writing returns the bytes to put on the wire.
 */

export const SIGNALING_TYPES = ['subscribe', 'unsubscribe', 'publish', 'ping'] as const;
export type SignalingType = (typeof SIGNALING_TYPES)[number];

/** A publish as received: every field is forwarded unchanged, `clients` is set by the server. */
export type PublishFields = Record<string, unknown> & { type: 'publish'; topic: string };

export type SignalingMessage =
  | { type: 'subscribe'; topics: string[] }
  | { type: 'unsubscribe'; topics: string[] }
  | { type: 'publish'; topic: string; fields: PublishFields }
  | { type: 'ping' };

/** Why a frame is not a protocol message; also the `reason` label of the rejection metric. */
export type SignalingDecodeError =
  | 'invalid_json'
  | 'not_object'
  | 'unknown_type'
  | 'topics_not_array'
  | 'topic_not_string'
  | 'missing_topic';

export type SignalingReadResult =
  | { ok: true; message: SignalingMessage }
  | { ok: false; reason: SignalingDecodeError; detail: string };

const fail = (reason: SignalingDecodeError, detail: string): SignalingReadResult => ({ ok: false, reason, detail });

/** Parse one text frame. */
export function readSignalingMessage(text: string): SignalingReadResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail('invalid_json', 'frame is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('not_object', 'message is not a JSON object');
  }
  return readObject(value as Record<string, unknown>);
}

function readObject(obj: Record<string, unknown>): SignalingReadResult {
  switch (obj['type']) {
    case 'subscribe':
    case 'unsubscribe':
      return readTopics(obj['type'], obj['topics']);
    case 'publish':
      return readPublish(obj);
    case 'ping':
      return { ok: true, message: { type: 'ping' } };
    default:
      return fail('unknown_type', 'unknown message type');
  }
}

function readTopics(type: 'subscribe' | 'unsubscribe', topics: unknown): SignalingReadResult {
  if (!Array.isArray(topics)) return fail('topics_not_array', `${type}: topics is not an array`);
  for (const topic of topics) {
    if (typeof topic !== 'string' || topic.length === 0) return fail('topic_not_string', `${type}: topic is not a non-empty string`);
  }
  return { ok: true, message: { type, topics: topics as string[] } };
}

function readPublish(obj: Record<string, unknown>): SignalingReadResult {
  const topic = obj['topic'];
  if (topic === undefined || topic === null || topic === '') return fail('missing_topic', 'publish: no topic');
  if (typeof topic !== 'string') return fail('topic_not_string', 'publish: topic is not a string');
  return { ok: true, message: { type: 'publish', topic, fields: obj as PublishFields } };
}

const encoder = new TextEncoder();

/**
 * The frame every subscriber of the topic receives: the publish as sent, with `clients`
 * set to the subscriber count. Throws RangeError for values JSON cannot serialize
 * (e.g. nesting deeper than the stack); callers treat that as a malformed message.
 */
export function writePublish(fields: PublishFields, clients: number): Uint8Array {
  return encoder.encode(JSON.stringify({ ...fields, clients }));
}

/** The answer to `{"type":"ping"}`. */
export const messagePong = '{"type":"pong"}';

/** Outgoing messages, for clients and tests. */
export function writeSubscribe(topics: readonly string[]): string {
  return JSON.stringify({ type: 'subscribe', topics });
}

export function writeUnsubscribe(topics: readonly string[]): string {
  return JSON.stringify({ type: 'unsubscribe', topics });
}

export function writePing(): string {
  return '{"type":"ping"}';
}
