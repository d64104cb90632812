/**
 * A TCP proxy in front of the run's Redis that drops, swallows, delays, refuses or holds
 * SUBSCRIBE commands (redis-link-resubscribe.test.ts).
 */
import { EventEmitter, once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { testRedisUrl } from '../../../test/helpers/test-env.js';

const redis = new URL(testRedisUrl());

/**
 * Forwards to Redis, command by command; `drop()` ends every connection; while `swallow` is set, a
 * connection's SUBSCRIBE and all after it are not forwarded; with `subscribeDelayMs`, a SUBSCRIBE
 * and all after it on that connection are forwarded that much later (in order). While `refuse` is
 * above 0, a SUBSCRIBE is answered `-ERR injected` by the proxy itself (not forwarded; emits
 * 'refused'); with `holdAfterRefusal`, the next SUBSCRIBE and all after it on that connection wait
 * for `release()` (emits 'held'). `dropSubscribers()` ends only the connections that sent a SUBSCRIBE.
 */
export class SwallowingProxy extends EventEmitter {
  swallow = false;
  subscribeDelayMs = 0;
  swallowed = 0;
  refuse = 0;
  holdAfterRefusal = false;
  /** a refusal written while Redis still owed answers: ioredis would have matched it to another command */
  misordered = 0;
  private releaseHeld: () => void = () => undefined;
  private readonly held = new Promise<void>((resolve) => (this.releaseHeld = resolve));
  private readonly sockets = new Set<Socket>();
  private readonly subscribers = new Set<Socket>();
  private readonly waiters: Array<() => void> = [];
  private readonly server: Server = createServer((client) => this.accept(client));

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    return `redis://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  drop(): void {
    for (const s of this.sockets) s.destroy();
  }

  dropSubscribers(): void {
    for (const s of this.subscribers) s.destroy();
  }

  release(): void {
    this.releaseHeld();
  }

  /** Resolves once a SUBSCRIBE has been swallowed. */
  swallowedOne(): Promise<void> {
    return this.swallowed > 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.release();
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: redis.hostname, port: Number(redis.port || 6379) });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        this.sockets.delete(s);
        this.subscribers.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    const conn: ProxiedConnection = { sent: 0, answered: 0, stalled: false, refused: false, gate: null };
    splitValues(client, (command) => this.route(conn, command, client, upstream));
    splitValues(upstream, (reply) => {
      conn.answered++;
      client.write(reply);
    });
  }

  private route(conn: ProxiedConnection, command: Buffer, client: Socket, upstream: Socket): void {
    const subscribe = /^\*\d+\r\n\$\d+\r\nsubscribe\r\n/i.test(command.toString('latin1', 0, 40));
    // From a swallowed SUBSCRIBE on, nothing more is forwarded: Redis would answer later
    // commands, and ioredis would match those answers to the SUBSCRIBE.
    if (subscribe) this.subscribers.add(client);
    if (!conn.stalled && this.swallow && subscribe) {
      conn.stalled = true;
      this.swallowed++;
      this.waiters.splice(0).forEach((w) => w());
    }
    if (conn.stalled) return;
    if (!conn.gate && subscribe && this.refuse > 0) {
      this.refuse--;
      conn.refused = true;
      // ioredis takes the error as this SUBSCRIBE's one reply only if Redis owes no earlier answer
      // (counted on a connection not subscribed yet: a subscribed one's messages are not answers).
      if (conn.answered < conn.sent) this.misordered++;
      client.write('-ERR injected\r\n');
      this.emit('refused');
      return;
    }
    if (!conn.gate && subscribe && this.subscribeDelayMs > 0) {
      conn.gate = new Promise((resolve) => setTimeout(resolve, this.subscribeDelayMs));
    } else if (!conn.gate && subscribe && this.holdAfterRefusal && conn.refused) {
      conn.gate = this.held;
      this.emit('held');
    }
    const forward = (): void => {
      conn.sent++;
      upstream.write(command);
    };
    if (conn.gate) void conn.gate.then(forward);
    else forward();
  }
}

interface ProxiedConnection {
  /** commands forwarded, and values Redis sent back */
  sent: number;
  answered: number;
  /** a SUBSCRIBE was swallowed: nothing more is forwarded */
  stalled: boolean;
  /** a SUBSCRIBE was refused by the proxy */
  refused: boolean;
  /** from a delayed or held SUBSCRIBE on, each command is forwarded once this resolves (in order) */
  gate: Promise<void> | null;
}

/** Calls `each` with every complete RESP2 value read from `socket`, in order. */
function splitValues(socket: Socket, each: (value: Buffer) => void): void {
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    let end: number;
    while (buffered.length > 0 && (end = valueEnd(buffered, 0)) > 0) {
      each(buffered.subarray(0, end));
      buffered = buffered.subarray(end);
    }
  });
}

/** Where the RESP2 value at `at` ends, or -1 while `buf` does not hold all of it. */
function valueEnd(buf: Buffer, at: number): number {
  const line = buf.indexOf('\r\n', at);
  if (line < 0) return -1;
  const type = String.fromCharCode(buf[at] ?? 0);
  const n = Number(buf.toString('latin1', at + 1, line));
  let end = line + 2;
  if (type === '$') return n < 0 ? end : end + n + 2 <= buf.length ? end + n + 2 : -1;
  if (type !== '*') return end;
  for (let i = 0; i < n && end > 0; i++) end = valueEnd(buf, end);
  return end;
}
