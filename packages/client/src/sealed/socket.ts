/**
 * The sealed transport's WebSocket: connected while wanted, with a fresh token for every attempt
 * and back-off between attempts (100 ms doubling to 2.5 s, as y-websocket's default cap). A 4400
 * (malformed) is not retried: nothing would change on the next attempt.
 *
 * Before the open socket's token expires (exp − min(refreshMarginMs, half its life); the server
 * closes sockets whose token expired) a fresh token is fetched and the socket swapped for one
 * carrying it: onClose says `swap`, and the next socket opens at once.
 */
import { CloseCode } from '@sync-suite/shared';
import { withQuery } from '../endpoints.js';
import { tokenExpiresAt } from '../token-expiry.js';

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
  /** `swap`: closed to open the next socket with a fresh token (refreshMarginMs) */
  onClose: (code: number, reason: string, swap: boolean) => void;
  /** swap the socket this long before its token expires (at most half the token's life) */
  refreshMarginMs?: number;
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2500;
const OPEN = 1;
/** setTimeout's limit */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** a failed refresh is tried again after this (the socket stays open meanwhile) */
const REFRESH_RETRY_MS = 5_000;

export class SealedSocket {
  private ws: WebSocketLike | null = null;
  private wanted = false;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private connecting = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** a fresh token for the next socket, fetched before the open one's expired */
  private fresh: { token: string | undefined } | undefined;

  constructor(private readonly opts: SealedSocketOptions) {}

  get open(): boolean {
    return this.ws?.readyState === OPEN;
  }

  /** closing the socket to swap it for one with a fresh token (it is no longer OPEN meanwhile) */
  get swapping(): boolean {
    return this.fresh !== undefined;
  }

  connect(): void {
    this.wanted = true;
    if (!this.ws && !this.connecting && this.timer === undefined) void this.attempt();
  }

  disconnect(): void {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.refreshTimer);
    this.fresh = undefined;
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
      const fresh = this.fresh;
      this.fresh = undefined;
      token = fresh ? fresh.token : await this.opts.getToken();
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
      this.armRefresh(ws, token);
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
      clearTimeout(this.refreshTimer);
      const swap = this.fresh !== undefined && this.wanted;
      this.opts.onClose(ev.code, ev.reason, swap);
      if (swap) void this.attempt();
      else if (ev.code !== CloseCode.BadRequest) this.retry();
    };
  }

  private armRefresh(ws: WebSocketLike, token: string | undefined): void {
    clearTimeout(this.refreshTimer);
    const exp = tokenExpiresAt(token);
    if (exp === undefined || this.opts.refreshMarginMs === undefined) return;
    const now = Date.now();
    const at = exp - Math.min(this.opts.refreshMarginMs, Math.max(0, exp - now) / 2);
    this.refreshTimer = setTimeout(() => this.refresh(ws), Math.min(Math.max(0, at - now), MAX_DELAY_MS));
  }

  /** Fetch the next token, then close `ws`: its onclose opens the next socket with that token. */
  private refresh(ws: WebSocketLike): void {
    Promise.resolve()
      .then(() => this.opts.getToken())
      .then(
        (token) => {
          if (!this.wanted || this.ws !== ws || ws.readyState !== OPEN) return;
          this.fresh = { token };
          ws.close();
        },
        (err: unknown) => {
          this.opts.onTokenError(err);
          if (this.wanted && this.ws === ws) this.refreshTimer = setTimeout(() => this.refresh(ws), REFRESH_RETRY_MS);
        },
      );
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
