/** Each publish is serialized once and the same bytes go to every receiver. */
import { afterEach, describe, expect, it } from 'vitest';
import { writePublish, type PublishFields } from '@sync-suite/shared';
import { LocalTopicBus } from '../src/signaling/local-topic-bus.js';
import type { TopicMember } from '../src/signaling/topic-bus.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { openRawClient } from './signaling-client.js';

const ROOM = 'test-conversation-fanout';

class Recorder implements TopicMember {
  readonly frames: Buffer[] = [];
  constructor(readonly id: string) {}
  deliver(frame: Buffer): void {
    this.frames.push(frame);
  }
}

describe('LocalTopicBus', () => {
  it('encodes a publish once and hands every member the identical Buffer', () => {
    let encodes = 0;
    const counts: number[] = [];
    const bus = new LocalTopicBus({
      maxMembersPerTopic: 10,
      onTopicCount: (n) => counts.push(n),
      encode: (fields, clients) => {
        encodes++;
        return writePublish(fields, clients);
      },
    });
    const members = Array.from({ length: 5 }, (_, i) => new Recorder(`m${i}`));
    for (const m of members) expect(bus.join(ROOM, m)).toBe('joined');
    expect(bus.join(ROOM, members[0] as Recorder)).toBe('already');
    const fields = { type: 'publish', topic: ROOM, data: 'x' } as PublishFields;
    expect(bus.publish(ROOM, fields)).toBe(5);
    expect(encodes).toBe(1);
    const first = members[0]?.frames[0];
    for (const m of members) expect(m.frames[0]).toBe(first);
    expect(JSON.parse(String(first))).toEqual({ ...fields, clients: 5 });
    expect(bus.publish('test-conversation-empty', fields)).toBe(0);
    expect(encodes).toBe(1);
    for (const m of members) bus.leave(ROOM, m);
    expect(bus.topicCount).toBe(0);
    expect(counts).toEqual([1, 0]);
  });

  it('refuses a member beyond the topic capacity', () => {
    const bus = new LocalTopicBus({ maxMembersPerTopic: 1 });
    expect(bus.join(ROOM, new Recorder('a'))).toBe('joined');
    expect(bus.join(ROOM, new Recorder('b'))).toBe('full');
    expect(bus.size(ROOM)).toBe(1);
  });
});

describe('WS /signal fan-out', () => {
  const scope = serverPerTest();
  afterEach(() => scope.close());

  it('passes the same Buffer to every server-side socket.send, as a text frame', async () => {
    const server = await scope.start();
    const clients = [];
    for (let i = 0; i < 5; i++) {
      const c = await openRawClient(scope);
      clients.push(c);
      c.send({ type: 'subscribe', topics: [ROOM] });
      await c.roundTrip();
    }
    const sent: Array<{ data: unknown; binary: unknown }> = [];
    for (const socket of server.app.websocketServer.clients) {
      const original = socket.send.bind(socket);
      socket.send = ((data: unknown, opts?: { binary?: boolean }) => {
        sent.push({ data, binary: opts?.binary });
        return original(data as Buffer, opts ?? {});
      }) as typeof socket.send;
    }
    clients[0]?.send({ type: 'publish', topic: ROOM, data: 'once' });
    for (const c of clients) expect(await c.find(1, (m) => m['type'] === 'publish')).toMatchObject({ data: 'once', clients: 5 });
    const publishes = sent.filter((s) => Buffer.isBuffer(s.data));
    expect(publishes).toHaveLength(5);
    for (const s of publishes) {
      expect(s.data).toBe(publishes[0]?.data);
      expect(s.binary).toBe(false);
    }
  });
});
