/**
 * A fresh token for every connection attempt of a stock provider's socket.
 *
 * y-websocket's WebsocketProvider and lib0's WebsocketClient (y-webrtc's signaling connection)
 * both reconnect on their own: `setupWS` reads `shouldConnect`, then `url`, synchronously.
 * The gate replaces those two properties on the instance: `shouldConnect` is true only while
 * a token fetched for this attempt is waiting (otherwise reading it starts `getToken()` and the
 * attempt is skipped), and reading `url` consumes that token. When the token arrives the gate
 * calls the provider's own `connect()`, which makes the attempt. The providers' back-off
 * still paces the attempts; the gate only delays each one by the time `getToken()` takes.
 */

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
  /** first retry delay after getToken() failed; doubles up to 30 s */
  retryMs?: number;
}

const MAX_RETRY_MS = 30_000;

export class TokenGate {
  private wanted: boolean;
  /** a token fetched for the next attempt; `{ value: undefined }` means "no token needed" */
  private ready: { value: string | undefined } | undefined;
  private fetching = false;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly owner: GatedSocketOwner,
    private readonly opts: TokenGateOptions,
    initiallyWanted: boolean,
  ) {
    this.wanted = initiallyWanted;
    Object.defineProperty(owner, 'shouldConnect', {
      configurable: true,
      enumerable: true,
      get: () => this.mayConnect(),
      set: (value: boolean) => {
        this.wanted = value;
      },
    });
    Object.defineProperty(owner, 'url', { configurable: true, enumerable: true, get: () => this.takeUrl() });
  }

  /** Want a connection: fetch a token, then let the provider connect. */
  start(): void {
    this.wanted = true;
    this.fetch();
  }

  /** Stop wanting a connection (the caller closes the provider's socket). */
  stop(): void {
    this.wanted = false;
    this.ready = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  close(): void {
    this.stop();
    this.closed = true;
  }

  private mayConnect(): boolean {
    if (!this.wanted || this.closed) return false;
    if (this.ready) return true;
    // A reconnect attempt is due: get a token for it and make the attempt when it arrives.
    this.fetch();
    return false;
  }

  private takeUrl(): string {
    const token = this.ready?.value;
    this.ready = undefined;
    return this.opts.url(token);
  }

  private fetch(): void {
    if (this.fetching || this.closed || this.retryTimer !== undefined) return;
    this.fetching = true;
    Promise.resolve()
      .then(() => this.opts.getToken())
      .then(
        (value) => {
          this.fetching = false;
          this.failures = 0;
          if (!this.wanted || this.closed) return;
          this.ready = { value };
          if (this.owner.ws !== null) return;
          this.owner.connect();
          this.opts.onAttempt?.();
        },
        (err: unknown) => {
          this.fetching = false;
          this.failures++;
          this.opts.onTokenError(err);
          const delay = Math.min((this.opts.retryMs ?? 1000) * 2 ** (this.failures - 1), MAX_RETRY_MS);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            if (this.wanted && !this.closed) this.fetch();
          }, delay);
        },
      );
  }
}
