/**
 * Who may open a room's socket, as one function: room name, token, token covers the room,
 * shutdown. The order and close codes are the relay's (relay/connection.ts, docs/errors.md), so
 * /sealed answers every refusal exactly as /relay does; the relay can call this too.
 */
import { closeWith, parseRoomName, type RoomName, type RoomTokenClaims } from '@sync-suite/shared';
import { tokenRefusal, type AuthEndpoint } from '../auth/authenticate.js';
import type { ServerContext } from '../context.js';

export type Admission =
  | { ok: true; claims: RoomTokenClaims; room: RoomName; readOnly: boolean }
  /** `auth`: an auth failure (already counted by the authenticator); otherwise count `metricReason` */
  | { ok: false; code: number; reason: string; metricReason: string; auth: boolean };

export async function admitToRoom(ctx: ServerContext, roomName: string, token: string | undefined, endpoint: AuthEndpoint): Promise<Admission> {
  const parsed = parseRoomName(roomName, ctx.roomPolicy);
  if (!parsed.ok) return refuse(...closeWith('ERR_ROOM_NAME'), 'bad_room_name', false);
  const auth = await ctx.auth.verify(token, endpoint);
  if (!auth.ok) return refuse(...closeWith(tokenRefusal(auth.reason)), 'unauthorized', true);
  if (!ctx.auth.covers(auth.claims, roomName, endpoint)) return refuse(...closeWith('ERR_FORBIDDEN_ROOM'), 'forbidden', true);
  if (ctx.lifecycle.shuttingDown) return refuse(...closeWith('ERR_SHUTTING_DOWN'), 'shutting_down', false);
  return { ok: true, claims: auth.claims, room: parsed.room, readOnly: auth.claims.scope === 'read' };
}

/** Whether rooms of this type must be sealed (SEALED_ROOM_TYPES): /relay refuses them. */
export function isSealedRoomType(config: ServerContext['config'], type: string): boolean {
  return config.SEALED_ROOM_TYPES?.includes(type) ?? false;
}

function refuse(code: number, reason: string, metricReason: string, auth: boolean): Admission {
  return { ok: false, code, reason, metricReason, auth };
}
