import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { ConnLog, connId, ownString } from '../src/ws/conn-log.js';

function capture(level: string): { log: FastifyBaseLogger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, stream) as unknown as FastifyBaseLogger, lines };
}

describe('ConnLog (a connection logger made on first use)', () => {
  it('puts the connection id, and the room once bound, on every line it writes', () => {
    const { log, lines } = capture('info');
    const id = connId();
    const conn = new ConnLog(log.child({ component: 'relay' }), { conn: id });
    conn.info({ limit: 'x' }, 'first');
    conn.bind('room', 'team-a');
    conn.warn('second');
    conn.debug({ hidden: true }, 'below the level');
    expect(lines.map((l) => l['msg'])).toEqual(['first', 'second']);
    expect(lines[0]).toMatchObject({ conn: id, component: 'relay', limit: 'x' });
    expect(lines[0]?.['room']).toBeUndefined();
    expect(lines[1]).toMatchObject({ conn: id, component: 'relay', room: 'team-a' });
  });

  it('makes no child logger while nothing is logged at an enabled level', () => {
    const { log } = capture('warn');
    let children = 0;
    const parent = { level: log.level, child: (b: Record<string, string>) => (children++, log.child(b)) } as unknown as FastifyBaseLogger;
    const conn = new ConnLog(parent, { conn: connId() });
    conn.debug('no');
    conn.info({ a: 1 }, 'no');
    expect(children).toBe(0);
    conn.warn('yes');
    conn.error('yes');
    expect(children).toBe(1);
  });

  it('ids are UUIDs and owned strings equal their source', () => {
    expect(connId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const url = `/relay/${'room-é-\ud83d\ude00'}?token=${'x'.repeat(300)}`;
    const room = url.slice(7, url.indexOf('?'));
    expect(ownString(room)).toBe(room);
  });
});
