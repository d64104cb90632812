/** Each publish is framed once and the same bytes go to every receiver. */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PublishFields } from '@sync-suite/shared';
import { LocalTopicBus } from '../src/signaling/local-topic-bus.js';
import { framePayload, publishFrame } from '../src/signaling/publish-frame.js';
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
      encode: (fields, received, clients) => {
        encodes++;
        return publishFrame(fields, received, clients);
      },
    });
    const members = Array.from({ length: 5 }, (_, i) => new Recorder(`m${i}`));
    for (const m of members) expect(bus.join(ROOM, m)).toBe('joined');
    expect(bus.join(ROOM, members[0] as Recorder)).toBe('already');
    const fields = { type: 'publish', topic: ROOM, data: 'x' } as PublishFields;
    const received = Buffer.from(JSON.stringify(fields));
    expect(bus.publish(ROOM, fields, received)).toBe(5);
    expect(encodes).toBe(1);
    const first = members[0]?.frames[0] as Buffer;
    for (const m of members) expect(m.frames[0]).toBe(first);
    expect(JSON.parse(String(framePayload(first)))).toEqual({ ...fields, clients: 5 });
    expect(bus.publish('test-conversation-empty', fields, received)).toBe(0);
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

  it('writes the same Buffer, one whole text frame, to every receiver\'s TCP socket', async () => {
    const server = await scope.start();
    const clients = [];
    for (let i = 0; i < 5; i++) {
      const c = await openRawClient(scope);
      clients.push(c);
      c.send({ type: 'subscribe', topics: [ROOM] });
      await c.roundTrip();
    }
    const written: unknown[] = [];
    for (const socket of server.app.websocketServer.clients) {
      const tcp = (socket as unknown as { _socket: Socket })._socket;
      const original = tcp.write.bind(tcp) as (chunk: unknown) => boolean;
      tcp.write = ((chunk: unknown) => (written.push(chunk), original(chunk))) as typeof tcp.write;
    }
    clients[0]?.send({ type: 'publish', topic: ROOM, data: 'once' });
    for (const c of clients) expect(await c.find(1, (m) => m['type'] === 'publish')).toMatchObject({ data: 'once', clients: 5 });
    expect(written).toHaveLength(5);
    const frame = written[0] as Buffer;
    for (const chunk of written) expect(chunk).toBe(frame);
    expect(frame[0]).toBe(0x81); // FIN + text
    expect(JSON.parse(String(framePayload(frame)))).toMatchObject({ data: 'once', clients: 5 });
  });
});
