/**
 * One place that turns a request's token into claims (or a refusal), for every endpoint.
 * With auth off (no AUTH_SECRET) every caller gets claims that cover all rooms with write scope.
 */
import { tokenCoversRoom, verifyRoomToken, type RoomTokenClaims, type TokenFailure } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { bearerToken, queryToken } from './request-token.js';

export type AuthEndpoint = 'signal' | 'relay' | 'turn' | 'metrics' | 'status' | 'sealed';

export type AuthResult = { ok: true; claims: RoomTokenClaims } | { ok: false; reason: TokenFailure };

const OPEN_CLAIMS: RoomTokenClaims = { sub: 'anonymous', exp: Number.MAX_SAFE_INTEGER, rooms: ['*'], scope: 'write' };

export class Authenticator {
  constructor(
    private readonly secrets: readonly string[],
    private readonly metrics: ServerMetrics,
  ) {}

  get enabled(): boolean {
    return this.secrets.length > 0;
  }

  async verify(token: string | undefined, endpoint: AuthEndpoint): Promise<AuthResult> {
    if (!this.enabled) return { ok: true, claims: OPEN_CLAIMS };
    const result = await verifyRoomToken(token, this.secrets);
    if (!result.ok) this.metrics.authFailures.inc({ endpoint, reason: result.reason });
    return result;
  }

  /** Counts a refusal for a room outside the token's `rooms`. */
  covers(claims: RoomTokenClaims, room: string, endpoint: AuthEndpoint): boolean {
    if (tokenCoversRoom(claims, room)) return true;
    this.metrics.authFailures.inc({ endpoint, reason: 'room_not_covered' });
    return false;
  }
}

/** The token from `?token=` (stock clients' params) or `Authorization: Bearer`. */
export function tokenFromRequest(req: { query: unknown; headers: Record<string, string | string[] | undefined> }): string | undefined {
  return queryToken(req.query) ?? bearerToken(req.headers);
}
