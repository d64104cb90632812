/**
 * publishFrame: the received bytes with `clients` spliced in, as one text frame; re-serialized
 * (as JSON.stringify({ ...fields, clients })) whenever splicing could differ from that.
 */
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { readSignalingMessage, type PublishFields } from '@sync-suite/shared';
import { SPLICE_MAX_BRACKETS, framePayload, publishFrame, textFrame } from '../src/signaling/publish-frame.js';

/** Decodes `received` as the server does and frames it for `clients` subscribers. */
function frameFor(received: Buffer, clients: number): { frame: Buffer; fields: PublishFields } {
  const read = readSignalingMessage(received.toString('utf8'));
  if (!read.ok || read.message.type !== 'publish') throw new Error('not a publish');
  return { frame: publishFrame(read.message.fields, received, clients), fields: read.message.fields };
}

const reserialized = (fields: PublishFields, clients: number) => JSON.stringify({ ...fields, clients });

describe('publishFrame', () => {
  it('forwards the received bytes as they are, with clients spliced before the closing brace', () => {
    const text = '{ "type": "publish",\n "topic": "test-conversation-a", "data": {"n": 1.50, "s": "\\"q\\""} } \r\n';
    const { frame } = frameFor(Buffer.from(text), 3);
    expect(frame[0]).toBe(0x81); // FIN + text
    expect(String(framePayload(frame))).toBe('{ "type": "publish",\n "topic": "test-conversation-a", "data": {"n": 1.50, "s": "\\"q\\""} ,"clients":3}');
  });

  it('splices a publish whose nested objects have their own "type" when the message opens with "type":"publish"', () => {
    const text = ' {"type" : "publish", "topic":"test-conversation-a","data":{"type":"signal","signal":{"type":"offer"}}}';
    const { frame } = frameFor(Buffer.from(text), 2);
    expect(String(framePayload(frame))).toBe(`${text.slice(0, -1)},"clients":2}`);
  });

  // Duplicates among keys the server does not read (it reads type and topic, and sets clients):
  // spliced as received, so each receiver resolves them as it would the sender's own bytes. A
  // stock y-webrtc client parses with JSON.parse, which keeps the last, as the server did; a parser
  // keeping the first reads another `data`, but one the sender could have sent alone: type, topic
  // and clients occur once, so every parser reads what the server read (docs/PROTOCOL-signaling.md).
  it('splices a publish whose other top-level keys are duplicated, as received', () => {
    const text = '{"type":"publish", "topic":"test-conversation-a","data":"first","to":"a","data":{"n":2},"__proto__":1,"to":"b","__proto__":{"x":7}}';
    const { frame, fields } = frameFor(Buffer.from(text), 2);
    const payload = String(framePayload(frame));
    expect(payload).toBe(`${text.slice(0, -1)},"clients":2}`);
    expect(fields).toMatchObject({ data: { n: 2 }, to: 'b' });
    const value = JSON.parse(payload) as Record<string, unknown>;
    expect(value).toEqual({ ...fields, clients: 2 });
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ x: 7 });
    for (const key of ['"type"', '"topic"', '"clients"']) expect(payload.indexOf(key), key).toBe(payload.lastIndexOf(key));
  });

  it('writes 2-, 4- and 10-byte frame headers around the 126 and 65536 byte boundaries', () => {
    for (const length of [0, 125, 126, 65535, 65536, 70000]) {
      const payload = Buffer.alloc(length, 0x61);
      const frame = textFrame(payload);
      const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
      expect(frame.length).toBe(header + length);
      expect(frame[0]).toBe(0x81);
      if (header === 2) expect(frame[1]).toBe(length);
      if (header === 4) expect([frame[1], frame.readUInt16BE(2)]).toEqual([126, length]);
      if (header === 10) expect([frame[1], frame.readUInt32BE(2), frame.readUInt32BE(6)]).toEqual([127, 0, length]);
      expect(framePayload(frame).equals(payload)).toBe(true);
    }
  });

  // Each has a space after its first comma: spliced, it would keep it; re-serialized, it has none.
  const fallbacks: Array<[string, Buffer]> = [
    ['its own top-level clients', Buffer.from('{"type":"publish", "topic":"test-conversation-a","clients":99,"data":1}')],
    ['"topic" twice (a nested key)', Buffer.from('{"type":"publish", "topic":"test-conversation-a","data":{"topic":"test-conversation-b"}}')],
    ['"type" twice, the first not "publish" (a parser keeping the first would read ping)', Buffer.from('{"topic":"test-conversation-a", "type":"ping","type":"publish"}')],
    ['a \\u escape that spells a second topic key', Buffer.from('{"type":"publish", "\\u0074opic":"test-conversation-b","topic":"test-conversation-a"}')],
    ['bytes that are not UTF-8 (a binary frame)', Buffer.concat([Buffer.from('{"type":"publish", "topic":"test-conversation-a","data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
    [`more than ${SPLICE_MAX_BRACKETS} brackets`, Buffer.from(`{"type":"publish", "topic":"test-conversation-a","data":${'['.repeat(SPLICE_MAX_BRACKETS)}${']'.repeat(SPLICE_MAX_BRACKETS)}}`)],
  ];

  it.each(fallbacks)('re-serializes a publish with %s', (_name, received) => {
    const { frame, fields } = frameFor(received, 2);
    const payload = framePayload(frame);
    expect(String(payload)).toBe(reserialized(fields, 2));
    expect(isUtf8(payload)).toBe(true);
  });

  it('throws RangeError for a publish nested too deep to re-serialize', () => {
    const received = Buffer.from(`{"type":"publish","topic":"test-conversation-a","data":${'['.repeat(30000)}${']'.repeat(30000)}}`);
    expect(() => frameFor(received, 1)).toThrow(RangeError);
  });
});
