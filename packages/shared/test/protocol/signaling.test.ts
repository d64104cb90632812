/** The signaling codec against a table of frames: typed messages or typed errors, never a throw. */
import { describe, expect, it } from 'vitest';
import { messagePong, readSignalingMessage, writePing, writePublish, writeSubscribe, writeUnsubscribe } from '../../src/index.js';

const ok: Array<[string, unknown]> = [
  ['{"type":"subscribe","topics":["a-conversation-1","b"]}', { type: 'subscribe', topics: ['a-conversation-1', 'b'] }],
  ['{"type":"subscribe","topics":[]}', { type: 'subscribe', topics: [] }],
  ['{"type":"unsubscribe","topics":["a"]}', { type: 'unsubscribe', topics: ['a'] }],
  ['{"type":"ping"}', { type: 'ping' }],
  ['{"type":"ping","extra":1}', { type: 'ping' }],
  [
    '{"type":"publish","topic":"t","data":{"to":"x"}}',
    { type: 'publish', topic: 't', fields: { type: 'publish', topic: 't', data: { to: 'x' } } },
  ],
];

const bad: Array<[string, string]> = [
  ['', 'invalid_json'],
  ['{', 'invalid_json'],
  ['\u0000', 'invalid_json'],
  ['{"type":"ping"} x', 'invalid_json'],
  ['1', 'not_object'],
  ['null', 'not_object'],
  ['true', 'not_object'],
  ['"ping"', 'not_object'],
  ['[]', 'not_object'],
  ['{}', 'unknown_type'],
  ['{"type":"pong"}', 'unknown_type'],
  ['{"type":"__proto__"}', 'unknown_type'],
  ['{"type":"constructor"}', 'unknown_type'],
  ['{"type":null}', 'unknown_type'],
  ['{"type":"subscribe"}', 'topics_not_array'],
  ['{"type":"subscribe","topics":null}', 'topics_not_array'],
  ['{"type":"subscribe","topics":"a"}', 'topics_not_array'],
  ['{"type":"subscribe","topics":{"length":1,"0":"a"}}', 'topics_not_array'],
  ['{"type":"unsubscribe","topics":5}', 'topics_not_array'],
  ['{"type":"subscribe","topics":["a",1]}', 'topic_not_string'],
  ['{"type":"subscribe","topics":[""]}', 'topic_not_string'],
  ['{"type":"subscribe","topics":[["a"]]}', 'topic_not_string'],
  ['{"type":"unsubscribe","topics":[null]}', 'topic_not_string'],
  ['{"type":"publish"}', 'missing_topic'],
  ['{"type":"publish","topic":""}', 'missing_topic'],
  ['{"type":"publish","topic":null}', 'missing_topic'],
  ['{"type":"publish","topic":1}', 'topic_not_string'],
  ['{"type":"publish","topic":["t"]}', 'topic_not_string'],
];

describe('signaling codec', () => {
  it.each(ok)('reads %s', (frame, message) => {
    expect(readSignalingMessage(frame)).toEqual({ ok: true, message });
  });

  it.each(bad)('refuses %j as %s', (frame, reason) => {
    const result = readSignalingMessage(frame);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe(reason);
      expect(result.detail.length).toBeGreaterThan(0);
    }
  });

  it('writes a publish unchanged but for clients, keeping odd keys as plain data', () => {
    const read = readSignalingMessage('{"type":"publish","topic":"t","__proto__":{"polluted":1},"clients":99,"data":"d"}');
    if (!read.ok || read.message.type !== 'publish') throw new Error('not read');
    const bytes = writePublish(read.message.fields, 3);
    const text = new TextDecoder().decode(bytes);
    expect(JSON.parse(text)).toEqual(JSON.parse('{"type":"publish","topic":"t","__proto__":{"polluted":1},"clients":3,"data":"d"}'));
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // The decoded message is not modified by writing.
    expect(read.message.fields['clients']).toBe(99);
  });

  it('throws RangeError for a publish nested too deep to serialize', () => {
    const read = readSignalingMessage(`{"type":"publish","topic":"t","data":${'['.repeat(100000)}${']'.repeat(100000)}}`);
    if (!read.ok || read.message.type !== 'publish') throw new Error('not read as a publish');
    const fields = read.message.fields;
    expect(() => writePublish(fields, 1)).toThrow(RangeError);
  });

  it('writes the client messages the stock y-webrtc client sends', () => {
    expect(messagePong).toBe('{"type":"pong"}');
    expect(writePing()).toBe('{"type":"ping"}');
    expect(JSON.parse(writeSubscribe(['a']))).toEqual({ type: 'subscribe', topics: ['a'] });
    expect(JSON.parse(writeUnsubscribe(['a']))).toEqual({ type: 'unsubscribe', topics: ['a'] });
  });
});
