/**
 * When a socket's next connection attempt may start, and with which token: the one retry
 * discipline of the three paths (TokenGate for /signal and /relay, SealedSocket for /sealed).
 *
 * * Pace: an attempt follows at once only the first one or one after a socket proven to work
 *   (`succeeded()`: the server accepted it); any other waits the client's back-off (backoff.ts).
 * * Too big (1009): the socket is not reopened at once, and the next success does not reset the
 *   back-off, so a document the server keeps refusing is retried more and more slowly.
 * * Refused token (4401/4403): the next attempt needs another token. The caller asks getToken()
 *   again (after the back-off) until it returns a different one, and never presents the refused
 *   one again: a token the server refused would be refused again, and each refusal is reported.
 */
import { CloseCode } from '@sync-suite/shared';
import { Backoff, type BackoffOptions } from './backoff.js';

/** closes that refuse the token: the next attempt needs another one */
const TOKEN_REFUSED = new Set<number>([CloseCode.Unauthorized, CloseCode.Forbidden]);

export function refusesToken(code: number | undefined): boolean {
  return code !== undefined && TOKEN_REFUSED.has(code);
}

export class AttemptPacer {
  /** no attempt yet, or the last socket was proven to work (or a reconnect was asked for): the next starts at once */
  private proven = true;
  /** the last socket was closed 1009 (too big): the next success does not reset the back-off */
  private strained = false;
  private readonly backoff: Backoff;
  /** the token the server refused: not used for another attempt */
  private refusedToken: { token: string | undefined } | undefined;

  constructor(opts?: BackoffOptions) {
    this.backoff = new Backoff(opts);
  }

  /** The wait before the next attempt (0: at once); uses up the "at once". */
  delay(): number {
    const ms = this.proven ? 0 : this.backoff.next();
    this.proven = false;
    return ms;
  }

  /** An attempt starts without asking delay() (the first, a swap): the one after it waits unless it is proven. */
  attempting(): void {
    this.proven = false;
  }

  /** The next attempt starts at once (a planned reconnect). */
  atOnce(): void {
    this.proven = true;
  }

  /** The server accepted the socket: a later drop reconnects at once. */
  succeeded(): void {
    this.proven = true;
    if (!this.strained) this.backoff.reset();
    this.strained = false;
  }

  /** The server closed the socket 1009 (a frame over its limit). */
  tooBig(): void {
    this.proven = false;
    this.strained = true;
  }

  /** The server refused the token this socket carried (4401/4403). */
  refused(token: string | undefined): void {
    this.refusedToken = { token };
  }

  /** May an attempt use this token? false: the server refused it; ask getToken() again after delay(). */
  accepts(token: string | undefined): boolean {
    if (this.refusedToken && this.refusedToken.token === token) return false;
    this.refusedToken = undefined;
    return true;
  }

  /** The wait before retrying something that failed outside an attempt (a token refresh). */
  failed(): number {
    return this.backoff.next();
  }
}
