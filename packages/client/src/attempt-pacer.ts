/**
 * When a socket's next connection attempt may start, and with which token: the one retry
 * discipline of the three paths (TokenGate for /signal and /relay, SealedSocket for /sealed).
 *
 * * Pace: an attempt follows at once only the first one or one after a socket proven to work
 *   (`succeeded()`: the server accepted it); any other waits the client's back-off (backoff.ts).
 * * Refused content (1009 too big, 4413 over a cost limit, 4507 room quota): the server refused
 *   what the socket sent, and the next socket sends the same again (a sync resends what the
 *   server lacks). It is not reopened at once, and the next success does not reset the back-off,
 *   so content the server keeps refusing is retried more and more slowly, until the server
 *   is seen accepting it (`contentAccepted()`).
 * * Refused token (4401/4403): the next attempt needs another token. The caller asks getToken()
 *   again (after the back-off) until it returns a different one, and never presents the refused
 *   one again: a token the server refused would be refused again, and each refusal is reported.
 * * Final (`ended()`): no attempt follows (4400, 4410).
 *
 * Every decision is also told to `pacerProbe` (a test hook: test/fixtures/peer.ts reports them),
 * so a test can wait for the moment a retry would have happened instead of a fixed time.
 */
import { CloseCode } from '@sync-suite/shared';
import { Backoff, type BackoffOptions } from './backoff.js';

/** closes that refuse the token: the next attempt needs another one */
const TOKEN_REFUSED = new Set<number>([CloseCode.Unauthorized, CloseCode.Forbidden]);

export function refusesToken(code: number | undefined): boolean {
  return code !== undefined && TOKEN_REFUSED.has(code);
}

/** WebSocket close: a frame over the server's message limit */
export const CLOSE_TOO_BIG = 1009;
/** update or presence over a cost limit (docs/errors.md) */
export const CLOSE_TOO_COSTLY = 4413;
/** the room's stored size would pass ROOM_MAX_BYTES (docs/errors.md) */
export const CLOSE_ROOM_QUOTA = 4507;
/** closes that refuse what the socket sent: the next socket would send it again */
const CONTENT_REFUSED = new Set<number>([CLOSE_TOO_BIG, CLOSE_TOO_COSTLY, CLOSE_ROOM_QUOTA]);

export function refusesContent(code: number | undefined): boolean {
  return code !== undefined && CONTENT_REFUSED.has(code);
}

/**
 * What a pacer decided: `wait` (the next attempt after `ms`; 0: at once), `attempt` (an attempt
 * goes ahead with the token it got), `skip` (getToken() returned the refused token: no attempt
 * with it), `end` (no attempt follows), `accepted` (the server was seen accepting content after
 * refusing some: the back-off starts again).
 */
export type PaceDecision = { step: 'wait'; ms: number } | { step: 'attempt' } | { step: 'skip' } | { step: 'end' } | { step: 'accepted' };

/**
 * Test hook: when set, called with each decision of every pacer in this process and the path
 * of its socket (`signal`, `relay`, `sealed`). Not for apps: it is not exported by the package.
 */
export const pacerProbe: { on?: (path: string, decision: PaceDecision) => void } = {};

export class AttemptPacer {
  /** no attempt yet, or the last socket was proven to work (or a reconnect was asked for): the next starts at once */
  private proven = true;
  /** the server refused content since it was last seen accepting it: a success does not reset the back-off */
  private strained = false;
  private readonly backoff: Backoff;
  /** the token the server refused: not used for another attempt */
  private refusedToken: { token: string | undefined } | undefined;

  constructor(
    opts?: BackoffOptions,
    /** the socket's path, for pacerProbe */
    private readonly path = '',
  ) {
    this.backoff = new Backoff(opts);
  }

  /** The wait before the next attempt (0: at once); uses up the "at once". */
  delay(): number {
    const ms = this.proven ? 0 : this.backoff.next();
    this.proven = false;
    this.tell({ step: 'wait', ms });
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
  }

  /** The server refused what the socket sent (1009, 4413, 4507: refusesContent). */
  refusedContent(): void {
    this.proven = false;
    this.strained = true;
  }

  /**
   * The server sent what breaks the protocol (relay-transport.ts protocolError): paced as refused
   * content, so a server that syncs and then sends such a frame is not reopened at once each time.
   */
  brokeProtocol(): void {
    this.refusedContent();
  }

  /** The server was seen accepting what this device holds: the back-off starts again from the first step. */
  contentAccepted(): void {
    if (this.strained) this.tell({ step: 'accepted' });
    this.strained = false;
    this.backoff.reset();
  }

  /** The server refused the token this socket carried (4401/4403). */
  refused(token: string | undefined): void {
    this.refusedToken = { token };
  }

  /** May an attempt use this token? false: the server refused it; ask getToken() again after delay(). */
  accepts(token: string | undefined): boolean {
    if (this.refusedToken && this.refusedToken.token === token) {
      this.tell({ step: 'skip' });
      return false;
    }
    this.refusedToken = undefined;
    this.tell({ step: 'attempt' });
    return true;
  }

  /** No attempt follows (a final close). */
  ended(): void {
    this.tell({ step: 'end' });
  }

  /** The wait before retrying something that failed outside an attempt (a token refresh). */
  failed(): number {
    return this.backoff.next();
  }

  private tell(decision: PaceDecision): void {
    pacerProbe.on?.(this.path, decision);
  }
}
