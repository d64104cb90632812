/** Each publish is framed once and the same bytes go to every receiver. */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Errors, type PublishFields } from '@sync-suite/shared';
import { LocalTopicBus } from '../src/signaling/local-topic-bus.js';
import { framePayload, publishFrame } from '../src/signaling/publish-frame.js';
import type { TopicMember } from '../src/signaling/topic-bus.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { openRawClient, type RawClient } from './signaling-client.js';

/** Sends the frames in one TCP write, so that the server reads and handles them in one turn. */
function sendInOneWrite(c: RawClient, frames: string[]): void {
  const tcp = (c.ws as unknown as { _socket: Socket })._socket;
  tcp.cork();
  for (const f of frames) c.ws.send(f);
  tcp.uncork();
}

/** Records every chunk written to the server-side TCP sockets of the open WebSockets. */
function recordWrites(server: { app: { sync: { admission: { sockets: ReadonlySet<unknown> } } } }): unknown[] {
  const written: unknown[] = [];
  for (const socket of server.app.sync.admission.sockets) {
    const tcp = (socket as { _socket: Socket })._socket;
    const original = tcp.write.bind(tcp) as (chunk: unknown) => boolean;
    tcp.write = ((chunk: unknown) => (written.push(chunk), original(chunk))) as typeof tcp.write;
  }
  return written;
}

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
    const written = recordWrites(server);
    clients[0]?.send({ type: 'publish', topic: ROOM, data: 'once' });
    for (const c of clients) expect(await c.find(1, (m) => m['type'] === 'publish')).toMatchObject({ data: 'once', clients: 5 });
    expect(written).toHaveLength(5);
    const frame = written[0] as Buffer;
    for (const chunk of written) expect(chunk).toBe(frame);
    expect(frame[0]).toBe(0x81); // FIN + text
    expect(JSON.parse(String(framePayload(frame)))).toMatchObject({ data: 'once', clients: 5 });
  });

  it('writes the publishes one receiver gets in one turn in one write, in order', async () => {
    const server = await scope.start();
    const sender = await openRawClient(scope);
    const receiver = await openRawClient(scope);
    receiver.send({ type: 'subscribe', topics: [ROOM] });
    await receiver.roundTrip();
    const written = recordWrites(server);
    sendInOneWrite(sender, ['a', 'b', 'c'].map((data) => JSON.stringify({ type: 'publish', topic: ROOM, data })));
    await receiver.find(1, (m) => m['data'] === 'c');
    expect(receiver.frames.slice(1).map((f) => JSON.parse(f).data)).toEqual(['a', 'b', 'c']);
    expect(written).toHaveLength(1);
  });

  it('sends a pong after the publishes handled before it in the same turn', async () => {
    await scope.start();
    const c = await openRawClient(scope);
    c.send({ type: 'subscribe', topics: [ROOM] });
    await c.roundTrip();
    sendInOneWrite(c, [JSON.stringify({ type: 'publish', topic: ROOM, data: 1 }), '{"type":"ping"}']);
    await c.find(1, (m) => m['type'] === 'pong');
    expect(c.frames.slice(1).map((f) => JSON.parse(f).type)).toEqual(['publish', 'pong']);
  });

  it('writes what was delivered before a refusal ahead of the close frame', async () => {
    await scope.start();
    const c = await openRawClient(scope);
    c.send({ type: 'subscribe', topics: [ROOM] });
    await c.roundTrip();
    sendInOneWrite(c, [JSON.stringify({ type: 'publish', topic: ROOM, data: 'last' }), 'not json']);
    expect((await c.closedWithin()).code).toBe(Errors.ERR_PROTOCOL.closeCode);
    expect(c.frames.slice(1).map((f) => JSON.parse(f).data)).toEqual(['last']);
  });
});
