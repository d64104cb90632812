/**
 * The sealed transport's WebSocket: connected while wanted, with a fresh token for every attempt
 * and the client's one back-off between attempts (attempt-pacer.ts, as TokenGate paces /relay and
 * /signal): an attempt follows at once only the first one or one after a socket the transport
 * proved to work (`succeeded()`: it caught up); a server that opens the socket and then refuses
 * it (4401/4403/4409/4429) is retried after 0.5–1 s, doubling to 15 s, never faster. A 4400
 * (malformed) and a 4410 (room deleted) are not retried: nothing would change on the next
 * attempt. After a 4401/4403 the next socket opens only with a token other than the refused one
 * (getToken() is asked again at the back-off's pace until it returns another). After a close that
 * refuses what the socket sent (1009, 4507: refusesContent) the next sockets wait the growing
 * back-off, even after one caught up, until the transport sees the server accept an envelope
 * (`contentAccepted()`).
 *
 * Before the open socket's token expires (exp − min(refreshMarginMs, half its life); the server
 * closes sockets whose token expired) a fresh token is fetched and the socket swapped for one
 * carrying it: onClose says `swap`, and the next socket opens at once.
 */
import { CloseCode } from '@sync-suite/shared';
import { AttemptPacer, refusesContent, refusesToken } from '../attempt-pacer.js';
import type { BackoffOptions } from '../backoff.js';
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
  backoff?: BackoffOptions;
}

const OPEN = 1;
/** closes after which the next attempt would fail the same way: not retried */
const FINAL = new Set<number>([CloseCode.BadRequest, CloseCode.RoomDeleted]);
/** setTimeout's limit */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** a failed refresh is tried again after this (the socket stays open meanwhile) */
const REFRESH_RETRY_MS = 5_000;

export class SealedSocket {
  private ws: WebSocketLike | null = null;
  private wanted = false;
  /** pace, 1009 and refused tokens: the same discipline as /signal and /relay (attempt-pacer.ts) */
  private readonly pacer: AttemptPacer;
  /** closed for good (4400, 4410): connect() does nothing any more */
  private ended = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private connecting = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** a fresh token for the next socket, fetched before the open one's expired */
  private fresh: { token: string | undefined } | undefined;

  constructor(private readonly opts: SealedSocketOptions) {
    this.pacer = new AttemptPacer(opts.backoff, 'sealed');
  }

  get open(): boolean {
    return this.ws?.readyState === OPEN;
  }

  /** closing the socket to swap it for one with a fresh token (it is no longer OPEN meanwhile) */
  get swapping(): boolean {
    return this.fresh !== undefined;
  }

  connect(): void {
    if (this.ended) return;
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

  /** Close for good, as after a 4410 (the transport found the room deleted itself): no attempt follows. */
  end(): void {
    this.ended = true;
    this.disconnect();
  }

  /** Close and connect again at once (to read from an earlier cursor). */
  reconnect(): void {
    this.pacer.atOnce();
    this.ws?.close();
  }

  /** The server accepted the open socket (the transport caught up): a later drop reconnects at once. */
  succeeded(): void {
    this.pacer.succeeded();
  }

  /** The server accepted content (an ack) after refusing some: the back-off starts again. */
  contentAccepted(): void {
    this.pacer.contentAccepted();
  }

  send(frame: Uint8Array): void {
    if (this.ws?.readyState === OPEN) this.ws.send(frame);
  }

  private async attempt(): Promise<void> {
    // This attempt uses up the "at once": unless it is proven (succeeded()), the next one waits.
    this.pacer.attempting();
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
    if (!this.pacer.accepts(token)) return this.retry();
    const ws = new (this.opts.WebSocket as WebSocketClass)(withQuery(this.opts.url, { token }));
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
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
      if (refusesToken(ev.code)) this.pacer.refused(token);
      // What the socket sent was refused (1009 too big, 4507 room quota): not a socket to reopen
      // at once (the next one sends it again, unless the transport keeps frames under a 1009's
      // limit from now on), and repeated ones wait longer and longer.
      if (refusesContent(ev.code)) this.pacer.refusedContent();
      if (FINAL.has(ev.code)) {
        this.ended = true;
        this.wanted = false;
        this.pacer.ended();
      }
      this.opts.onClose(ev.code, ev.reason, swap);
      if (swap) void this.attempt();
      else this.retry();
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
    const delay = this.pacer.delay();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.wanted && !this.ws) void this.attempt();
    }, delay);
  }
}
