/**
 * A raw WebSocket client for the signaling tests: sends frames as given and exposes
 * received messages and the close event as promises with timeouts.
 */
import { WebSocket, type ClientOptions } from 'ws';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { ServerPerTest, TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

type MetricName = {
  [K in keyof ServerMetrics]: ServerMetrics[K] extends { get(): Promise<{ values: unknown[] }> } ? K : never;
}[keyof ServerMetrics];

/** The sum of a metric's values whose labels include `labels`. */
export async function metricValue(server: TestServer, name: MetricName, labels: Record<string, string> = {}): Promise<number> {
  const metric = server.app.sync.metrics[name] as unknown as { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> };
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((n, v) => n + v.value, 0);
}

export interface Closed {
  code: number;
  reason: string;
}

export class RawClient {
  readonly frames: string[] = [];
  readonly closed: Promise<Closed>;
  private waiters: Array<() => void> = [];
  private isClosed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('server sent a binary frame');
      this.frames.push(data.toString());
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        for (const w of this.waiters.splice(0)) w();
      }),
    );
    ws.on('error', () => {});
  }

  static async open(url: string, opts: ClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, opts);
    const client = new RawClient(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      5000,
      `open ${url}`,
    );
    return client;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** The n-th frame received (0-based), parsed, waiting for it if needed. */
  async frame(n: number, ms = 5000): Promise<Record<string, unknown>> {
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = () => (this.frames.length > n ? resolve() : this.waiters.push(check));
        check();
      }),
      ms,
      `frame ${n}`,
    );
    return JSON.parse(this.frames[n] as string) as Record<string, unknown>;
  }

  /** The first frame at index >= from that matches, waiting for it if needed. */
  async find(from: number, match: (m: Record<string, unknown>) => boolean, ms = 5000): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          for (let i = from; i < this.frames.length; i++) {
            const m = JSON.parse(this.frames[i] as string) as Record<string, unknown>;
            if (match(m)) {
              found = m;
              return resolve();
            }
          }
          if (this.isClosed) return reject(new Error('closed before a matching frame arrived'));
          this.waiters.push(check);
        };
        check();
      }),
      ms,
      'a matching frame',
    );
    return found as Record<string, unknown>;
  }

  /** Round trip: once the pong arrives, every frame sent before the ping has been handled. */
  async roundTrip(ms = 5000): Promise<void> {
    const from = this.frames.length;
    this.send({ type: 'ping' });
    await this.find(from, (m) => m['type'] === 'pong', ms);
  }

  closedWithin(ms = 5000): Promise<Closed> {
    return withTimeout(this.closed, ms, 'close');
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await withTimeout(this.closed, 5000, 'close').catch(() => this.ws.terminate());
  }
}

/** The publish messages `c` has received so far, parsed. */
export function publishesReceived(c: RawClient): Array<Record<string, unknown>> {
  return c.frames.map((f) => JSON.parse(f) as Record<string, unknown>).filter((m) => m['type'] === 'publish');
}

/** A raw client on `path` of this test's server, closed when the test ends. */
export async function openRawClient(scope: ServerPerTest, path = '/signal'): Promise<RawClient> {
  const c = await RawClient.open(`${scope.current.wsUrl}${path}`);
  scope.track(c);
  return c;
}
