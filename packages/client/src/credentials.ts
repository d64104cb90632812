/**
 * Keeps the token-derived credentials fresh for the whole session: asks getToken() again before
 * the token expires and refetches GET /turn-credentials before the TURN credentials expire, so
 * that WebRTC connections made hours into a session still get working ICE servers.
 * (Each socket attempt gets its own token through TokenGate; this is the timer side.)
 */
import { fetchTurnCredentials, type FetchLike, type IceServerConfig } from './ice-servers.js';
import { tokenExpiresAt } from './token-expiry.js';
import { Backoff } from './backoff.js';

export interface CredentialsOptions {
  getToken: () => Promise<string | undefined>;
  httpBase: string;
  fetch: FetchLike | undefined;
  timeoutMs: number;
  /** ask for a new token this long before the current one expires (at most half its life) */
  marginMs: number;
  /** ICE servers used while /turn-credentials cannot be fetched */
  fallback: IceServerConfig[];
  onIceServers: (servers: IceServerConfig[]) => void;
  onError: (what: 'token' | 'turn-credentials', err: unknown) => void;
}

/** no refresh sooner than this after the last */
const MIN_DELAY_MS = 1_000;
/** setTimeout's limit */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class CredentialsKeeper {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** getToken() failures */
  private readonly backoff = new Backoff();
  /** GET /turn-credentials failures */
  private readonly iceBackoff = new Backoff();
  private wake: (() => void) | undefined;

  constructor(private readonly opts: CredentialsOptions) {}

  /** The first token (retried until getToken succeeds), with the ICE servers fetched once. */
  async first(): Promise<string | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      try {
        const token = await this.opts.getToken();
        this.backoff.reset();
        await this.refreshIceServers(token);
        return token;
      } catch (err) {
        this.opts.onError('token', err);
        await this.sleep(this.backoff.next());
      }
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async refresh(): Promise<void> {
    try {
      const token = await this.opts.getToken();
      this.backoff.reset();
      await this.refreshIceServers(token);
    } catch (err) {
      this.opts.onError('token', err);
      this.schedule(Date.now() + this.backoff.next());
    }
  }

  /** Fetch ICE servers with this token and schedule the next refresh. Never throws. */
  private async refreshIceServers(token: string | undefined): Promise<void> {
    const now = Date.now();
    const expiresAt = tokenExpiresAt(token);
    const next: number[] = [];
    if (expiresAt !== undefined) next.push(expiresAt - Math.min(this.opts.marginMs, Math.max(0, expiresAt - now) / 2));
    const fetchImpl = this.opts.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
    try {
      if (!fetchImpl) throw new Error('no fetch() in this environment: pass options.fetch');
      const creds = await fetchTurnCredentials(this.opts.httpBase, token, fetchImpl, this.opts.timeoutMs);
      if (this.closed) return;
      this.iceBackoff.reset();
      this.opts.onIceServers(creds.iceServers);
      next.push(now + creds.ttl * 800); // 80% of the credentials' lifetime
    } catch (err) {
      if (this.closed) return;
      this.opts.onError('turn-credentials', err);
      this.opts.onIceServers(this.opts.fallback);
      next.push(now + this.iceBackoff.next());
    }
    if (next.length > 0) this.schedule(Math.min(...next));
  }

  private schedule(at: number): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    const delay = Math.min(Math.max(at - Date.now(), MIN_DELAY_MS), MAX_DELAY_MS);
    this.timer = setTimeout(() => {
      this.refresh().catch((err: unknown) => this.opts.onError('token', err));
    }, delay);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((done) => {
      this.wake = done;
      this.timer = setTimeout(done, ms);
    });
  }
}
