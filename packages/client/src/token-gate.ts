/**
 * A fresh token for every connection attempt of a stock provider's socket, and the pace of
 * those attempts.
 *
 * y-websocket's WebsocketProvider and lib0's WebsocketClient (y-webrtc's signaling connection)
 * both reconnect on their own: `setupWS` reads `shouldConnect`, then `url`, synchronously.
 * The gate replaces those two properties on the instance: `shouldConnect` is true only while
 * a token fetched for this attempt is waiting (otherwise reading it schedules the next attempt
 * and the stock one is skipped), and reading `url` consumes that token. When the token arrives
 * the gate calls the provider's own `connect()`, which makes the attempt. Any other read of `url`
 * (no token waiting, or the gate closed) gets the URL the owner was made with and changes nothing:
 * y-webrtc's disconnect() uses it as the key of its process-wide map of signaling connections
 * (node_modules/y-webrtc/src/y-webrtc.js), so a different URL there would leave the destroyed
 * connection in the map for the next provider with the same URL to reuse.
 *
 * The stock back-offs restart from zero whenever a socket opens, so a server that accepts the
 * socket and then refuses it (4401/4403/4409/4429) would be hammered many times a second. The
 * gate paces attempts itself (attempt-pacer.ts, as the sealed path's socket does): an attempt
 * follows at once only the first one or one the transport proved to work (`succeeded()`: the
 * server accepted it); any other waits. A socket closed for what it sent (1009, 4413, 4507:
 * `refusedContent()`) does not count as proven, until `contentAccepted()`. A token the server refused (`refused()`, 4401/4403) is not presented again: getToken()
 * is asked again at the back-off's pace until it returns another.
 *
 * Before the token of the open socket expires (exp − min(margin, half its life)) the gate fetches
 * a fresh one and asks the transport to swap the socket (`refresh.onDue`): the stock reconnect
 * then opens the next socket at once with it. The server closes sockets whose token expired.
 */
import { AttemptPacer } from './attempt-pacer.js';
import type { BackoffOptions } from './backoff.js';
import { tokenExpiresAt } from './token-expiry.js';

/** WebSocket.OPEN */
const OPEN = 1;

/** setTimeout's limit */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface GatedSocketOwner {
  ws: unknown;
  connect(): void;
}

export interface TokenGateOptions {
  getToken: () => Promise<string | undefined>;
  /** the URL to open with this token (undefined: auth off) */
  url: (token: string | undefined) => string;
  onTokenError: (err: unknown) => void;
  /** called right after the gate made the provider start an attempt (its socket exists now) */
  onAttempt?: () => void;
  backoff?: BackoffOptions;
  /** the socket's path (`signal`, `relay`), for the test hook pacerProbe (attempt-pacer.ts) */
  path?: string;
  /** swap the socket for one with a fresh token this long before the token expires (at most half its life) */
  refresh?: { marginMs: number; onDue: () => void };
}

export class TokenGate {
  private wanted: boolean;
  /** a token fetched for the next attempt; `{ value: undefined }` means "no token needed" */
  private ready: { value: string | undefined } | undefined;
  private fetching = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly pacer: AttemptPacer;
  /** the token of the latest attempt (what a refusal refers to) */
  private presented: string | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly stockUrl: () => string;

  constructor(
    private readonly owner: GatedSocketOwner,
    private readonly opts: TokenGateOptions,
    initiallyWanted: boolean,
  ) {
    this.wanted = initiallyWanted;
    this.pacer = new AttemptPacer(opts.backoff, opts.path);
    Object.defineProperty(owner, 'shouldConnect', {
      configurable: true,
      enumerable: true,
      get: () => this.mayConnect(),
      set: (value: boolean) => {
        this.wanted = value;
      },
    });
    // The URL the owner was made with (an own value: lib0's WebsocketClient; a prototype getter:
    // y-websocket), read fresh each time in case the owner changes what the getter builds from.
    const own = Object.getOwnPropertyDescriptor(owner, 'url');
    const proto: unknown = Object.getPrototypeOf(owner);
    this.stockUrl = () => (own ? own.value : Reflect.get(proto as object, 'url', owner)) as string;
    Object.defineProperty(owner, 'url', { configurable: true, enumerable: true, get: () => (this.ready ? this.takeUrl() : this.stockUrl()) });
  }

  /** Want a connection: fetch a token, then let the provider connect (after the back-off, if due). */
  start(): void {
    this.wanted = true;
    this.schedule();
  }

  /** Stop wanting a connection (the caller closes the provider's socket). The back-off is kept. */
  stop(): void {
    this.wanted = false;
    this.ready = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.refreshTimer);
  }

  close(): void {
    this.stop();
    this.closed = true;
  }

  /** The server accepted the current connection: the next attempt, if it drops, starts at once. */
  succeeded(): void {
    this.pacer.succeeded();
  }

  /** The server refused what the socket sent (1009, 4413, 4507): the next attempts wait, longer each time. */
  refusedContent(): void {
    this.pacer.refusedContent();
  }

  /** The server broke the protocol on this socket: as refusedContent(), until contentAccepted(). */
  brokeProtocol(): void {
    this.pacer.brokeProtocol();
  }

  /** The server was seen accepting what this device holds: the back-off starts again. */
  contentAccepted(): void {
    this.pacer.contentAccepted();
  }

  /** No attempt follows (a final close): stop, and tell the pacer. */
  end(): void {
    this.stop();
    this.pacer.ended();
  }

  /** The server refused the latest attempt's token (4401/4403): it is not presented again. */
  refused(): void {
    this.pacer.refused(this.presented);
    // nothing open to refresh: the next attempt gets its token through the paced path
    clearTimeout(this.refreshTimer);
  }

  private mayConnect(): boolean {
    if (!this.wanted || this.closed) return false;
    if (this.ready) return true;
    // A reconnect attempt is due: get a token for it and make the attempt when it arrives.
    this.schedule();
    return false;
  }

  private takeUrl(): string {
    const token = this.ready?.value;
    this.ready = undefined;
    this.armRefresh(token);
    // Read inside the provider's setupWS, which assigns the new socket right after.
    queueMicrotask(() => this.opts.onAttempt?.());
    return this.opts.url(token);
  }

  /** The socket open now carries this token (one the gate did not hand out: the first signaling URL). */
  armRefresh(token: string | undefined): void {
    this.presented = token;
    clearTimeout(this.refreshTimer);
    const exp = tokenExpiresAt(token);
    const now = Date.now();
    // an expired token (the server refuses it) is not refreshed: the paced path gets the next one
    if (exp === undefined || exp <= now || !this.opts.refresh) return;
    const at = exp - Math.min(this.opts.refresh.marginMs, Math.max(0, exp - now) / 2);
    this.refreshTimer = setTimeout(() => this.refreshNow(), Math.min(Math.max(0, at - now), MAX_DELAY_MS));
  }

  /** The token is about to expire: fetch the next one, then let the transport swap its socket. */
  private refreshNow(): void {
    if (!this.wanted || this.closed || this.fetching || this.ready) return;
    // Only an open socket is swapped: an attempt that was refused or dropped meanwhile waits for
    // the paced path (a refresh starts its attempt at once, past the back-off).
    if ((this.owner.ws as { readyState?: number } | null)?.readyState !== OPEN) return;
    this.fetch(true);
  }

  private schedule(): void {
    if (this.fetching || this.closed || this.timer !== undefined || this.ready) return;
    const delay = this.pacer.delay();
    if (delay === 0) return this.fetch(false);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.wanted && !this.closed) this.fetch(false);
    }, delay);
  }

  /**
   * Fetches the token for the next attempt, then lets the provider connect. A `refresh` swaps the
   * open socket at once (no back-off: the server accepted this token's predecessor); a refresh that
   * failed leaves the socket open (the server closes it 30 s after expiry) and tries again later.
   */
  private fetch(refresh: boolean): void {
    this.fetching = true;
    Promise.resolve()
      .then(() => this.opts.getToken())
      .then(
        (value) => {
          this.fetching = false;
          if (!this.wanted || this.closed) return;
          // the refused token again: no attempt with it; ask again after the back-off
          if (!this.pacer.accepts(value)) {
            if (!refresh) return this.schedule();
            this.refreshTimer = setTimeout(() => this.refreshNow(), this.pacer.failed());
            return;
          }
          this.ready = { value };
          if (refresh) this.pacer.atOnce();
          if (this.owner.ws === null) this.owner.connect();
          else if (refresh) this.opts.refresh?.onDue();
        },
        (err: unknown) => {
          this.fetching = false;
          this.opts.onTokenError(err);
          // closed meanwhile (the provider destroyed): no timer outlives it
          if (!this.wanted || this.closed) return;
          if (refresh) this.refreshTimer = setTimeout(() => this.refreshNow(), this.pacer.failed());
          else this.schedule();
        },
      );
  }
}
