import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../src/logging/logger.js';

const SECRET = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln';

/** A pino destination that keeps every line, parsed (pino's test/helper.js `sink`). */
function sink(): { stream: Writable; lines: Array<Record<string, unknown>>; text(): string } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { stream, lines, text: () => raw.join('\n') };
}

describe('redactUrl', () => {
  it.each([
    [`/signal?token=${SECRET}`, '/signal?token=[REDACTED]'],
    [`/relay/room?x=1&token=${SECRET}&y=2`, '/relay/room?x=1&token=[REDACTED]&y=2'],
    [`/relay/room?TOKEN=${SECRET}#frag`, '/relay/room?TOKEN=[REDACTED]#frag'],
    [`/x?access_token=${SECRET}&password=p&secret=s`, '/x?access_token=[REDACTED]&password=[REDACTED]&secret=[REDACTED]'],
    ['/relay/room?mytoken=keep', '/relay/room?mytoken=keep'],
    // names are read as the server's query parser reads them: percent-decoded, any case
    [`/relay/room?%74oken=${SECRET}`, '/relay/room?%74oken=[REDACTED]'],
    [`/signal?%54%4F%4B%45%4E=${SECRET}&a=1`, '/signal?%54%4F%4B%45%4E=[REDACTED]&a=1'],
    [`/x?pass%77ord=${SECRET}`, '/x?pass%77ord=[REDACTED]'],
    [`/x?to%6Ben%20=${SECRET}`, '/x?to%6Ben%20=[REDACTED]'],
    [`/x?%E0%A4%A=keep&token=${SECRET}`, '/x?%E0%A4%A=keep&token=[REDACTED]'],
    ['/healthz', '/healthz'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('createLogger', () => {
  it('writes JSON lines with level, time and message', () => {
    const out = sink();
    createLogger({ destination: out.stream, name: 'test' }).info({ room: 'r' }, 'hello');
    expect(out.lines[0]).toMatchObject({ level: 30, name: 'test', room: 'r', msg: 'hello' });
    expect(typeof out.lines[0]?.['time']).toBe('number');
  });

  it('redacts ?token= in serialized requests, url/path fields and messages', () => {
    const out = sink();
    const log = createLogger({ destination: out.stream });
    log.info({ req: { method: 'GET', url: `/relay/r?token=${SECRET}` } }, 'incoming request');
    log.info({ path: `/signal?token=${SECRET}` }, 'closed incoming websocket connection');
    log.info({ url: `/signal?a=1&token=${SECRET}` }, 'upgrade');
    log.info(`Route GET:/nowhere?token=${SECRET} not found`);
    log.child({ conn: 'c1' }).warn('refused %s', `/relay/x?token=${SECRET}`);
    expect(out.lines).toHaveLength(5);
    expect(out.text()).not.toContain(SECRET);
    expect(out.lines[0]?.['req']).toMatchObject({ url: '/relay/r?token=[REDACTED]' });
    expect(out.lines[1]?.['path']).toBe('/signal?token=[REDACTED]');
    expect(out.lines[2]?.['url']).toBe('/signal?a=1&token=[REDACTED]');
    expect(out.lines[3]?.['msg']).toBe('Route GET:/nowhere?token=[REDACTED] not found');
    expect(out.lines[4]?.['msg']).toBe('refused /relay/x?token=[REDACTED]');
  });

  it('redacts authorization headers and token fields', () => {
    const out = sink();
    const log = createLogger({ destination: out.stream });
    log.info({ headers: { authorization: `Bearer ${SECRET}`, host: 'h' } }, 'headers');
    log.info({ req: { headers: { authorization: `Bearer ${SECRET}` } } }, 'raw req');
    log.info({ authorization: `Bearer ${SECRET}` }, 'top-level');
    log.info({ token: SECRET, auth: { token: SECRET }, turn: { credential: SECRET, secret: SECRET } }, 'fields');
    expect(out.text()).not.toContain(SECRET);
    expect(out.lines[0]?.['headers']).toEqual({ authorization: '[REDACTED]', host: 'h' });
    expect(out.lines[3]).toMatchObject({ token: '[REDACTED]', auth: { token: '[REDACTED]' } });
  });

  it('respects the level', () => {
    const out = sink();
    const log = createLogger({ destination: out.stream, level: 'warn' });
    log.info('hidden');
    log.warn('shown');
    expect(out.lines.map((l) => l['msg'])).toEqual(['shown']);
  });
});
