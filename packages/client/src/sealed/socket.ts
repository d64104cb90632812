/**
 * The sealed transport's WebSocket: connected while wanted, with a fresh token for every attempt
 * and back-off between attempts (100 ms doubling to 2.5 s, as y-websocket's default cap). A 4400
 * (malformed) is not retried: nothing would change on the next attempt.
 */
import { CloseCode } from '@sync-suite/shared';
import { withQuery } from '../endpoints.js';

interface WebSocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
type WebSocketClass = new (url: string) => WebSocketLike;

export interface SealedSocketOptions {
  url: string;
  WebSocket: unknown;
  getToken: () => Promise<string | undefined>;
  onTokenError: (err: unknown) => void;
  onOpen: () => void;
  onFrame: (frame: Uint8Array) => void;
  onClose: (code: number, reason: string) => void;
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2500;
const OPEN = 1;

export class SealedSocket {
  private ws: WebSocketLike | null = null;
  private wanted = false;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private connecting = false;

  constructor(private readonly opts: SealedSocketOptions) {}

  get open(): boolean {
    return this.ws?.readyState === OPEN;
  }

  connect(): void {
    this.wanted = true;
    if (!this.ws && !this.connecting && this.timer === undefined) void this.attempt();
  }

  disconnect(): void {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const ws = this.ws;
    if (ws) ws.close();
  }

  /** Close and connect again at once (to read from an earlier cursor). */
  reconnect(): void {
    this.attempts = 0;
    this.ws?.close();
  }

  send(frame: Uint8Array): void {
    if (this.ws?.readyState === OPEN) this.ws.send(frame);
  }

  private async attempt(): Promise<void> {
    this.connecting = true;
    let token: string | undefined;
    try {
      token = await this.opts.getToken();
    } catch (err) {
      this.connecting = false;
      this.opts.onTokenError(err);
      return this.retry();
    }
    this.connecting = false;
    if (!this.wanted || this.ws) return;
    const ws = new (this.opts.WebSocket as WebSocketClass)(withQuery(this.opts.url, { token }));
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      this.attempts = 0;
      this.opts.onOpen();
    };
    ws.onmessage = (ev) => {
      const data = ev.data;
      if (data instanceof ArrayBuffer) this.opts.onFrame(new Uint8Array(data));
      else if (data instanceof Uint8Array) this.opts.onFrame(data);
    };
    ws.onerror = () => undefined; // a close follows
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.opts.onClose(ev.code, ev.reason);
      if (ev.code !== CloseCode.BadRequest) this.retry();
    };
  }

  private retry(): void {
    if (!this.wanted || this.timer !== undefined) return;
    const delay = Math.min(FIRST_RETRY_MS * 2 ** this.attempts, MAX_RETRY_MS);
    this.attempts++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.wanted && !this.ws) void this.attempt();
    }, delay);
  }
}
