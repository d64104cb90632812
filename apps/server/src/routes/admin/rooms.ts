/**
 * GET /admin/rooms, GET /admin/rooms/<room>, DELETE /admin/rooms/<room>. A room name, a listing's
 * prefix and its cursor hold only room-name characters (roomParam): anything else (a NUL, which
 * PostgreSQL refuses, among them) is a 400 before storage sees it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { hasOnlyRoomNameCharacters, MAX_ROOM_NAME_LENGTH, parseRoomName, type RoomNamePolicy } from '@sync-suite/shared';
import { badRequest } from './reply.js';

const MAX_NAME_LENGTH = MAX_ROOM_NAME_LENGTH;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

type ListQuery = { ok: true; prefix: string; after: string; limit: number } | { ok: false; message: string };

export function parseListQuery(query: unknown): ListQuery {
  const q = (query ?? {}) as Record<string, unknown>;
  const text = (v: unknown): v is string | undefined =>
    v === undefined || (typeof v === 'string' && v.length <= MAX_NAME_LENGTH && hasOnlyRoomNameCharacters(v));
  const { prefix, after, limit } = q;
  if (!text(prefix) || !text(after)) {
    return { ok: false, message: `prefix and after are at most ${MAX_NAME_LENGTH} characters of A-Z a-z 0-9 _ . : -` };
  }
  let n = DEFAULT_LIMIT;
  if (limit !== undefined) {
    n = typeof limit === 'string' && /^\d{1,5}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_LIMIT)) return { ok: false, message: `limit is a whole number from 1 to ${MAX_LIMIT}` };
  }
  return { ok: true, prefix: prefix ?? '', after: after ?? '', limit: n };
}

/**
 * A room name as the current ROOM_TYPES and ROOM_PREFIX allow it, or any text of room-name
 * characters up to the length limit: a room stored under an earlier ROOM_TYPES or ROOM_PREFIX must
 * still be listed, read and deleted (an erasure request does not wait for a config change).
 */
function roomParam(params: unknown, policy: RoomNamePolicy): string | null {
  const room = (params as Record<string, unknown>)['room'];
  if (typeof room !== 'string') return null;
  if (parseRoomName(room, policy).ok) return room;
  return room.length > 0 && room.length <= MAX_NAME_LENGTH && hasOnlyRoomNameCharacters(room) ? room : null;
}

export async function roomRoutes(app: FastifyInstance): Promise<void> {
  const { admin, metrics, roomPolicy } = app.sync;
  const noRoom = (reply: FastifyReply, action: string) => {
    metrics.adminRequests.inc({ action, outcome: 'bad_request' });
    return badRequest(reply, 'not a room name: <prefix>-<type>-<id> (README "Room names")');
  };

  app.get('/admin/rooms', async (req, reply) => {
    const q = parseListQuery(req.query);
    if (!q.ok) {
      metrics.adminRequests.inc({ action: 'list', outcome: 'bad_request' });
      return badRequest(reply, q.message);
    }
    const page = await admin.listRooms(q.prefix, q.after, q.limit);
    metrics.adminRequests.inc({ action: 'list', outcome: 'ok' });
    req.log.info({ admin: 'list', ip: req.ip, prefix: q.prefix, after: q.after, rooms: page.rooms.length }, 'admin: rooms listed');
    return page;
  });

  app.get('/admin/rooms/:room', async (req, reply) => {
    const room = roomParam(req.params, roomPolicy);
    if (!room) return noRoom(reply, 'stat');
    const figures = await admin.room(room);
    metrics.adminRequests.inc({ action: 'stat', outcome: figures ? 'ok' : 'not_found' });
    req.log.info({ admin: 'stat', ip: req.ip, room, found: figures !== null }, 'admin: room inspected');
    if (!figures) return reply.code(404).send({ error: 'ERR_ROOM_NOT_FOUND', message: 'nothing stored for this room and nobody connected' });
    return figures;
  });

  app.delete('/admin/rooms/:room', async (req, reply) => {
    const room = roomParam(req.params, roomPolicy);
    if (!room) return noRoom(reply, 'delete');
    const done = await admin.deleteRoom(room);
    metrics.adminRequests.inc({ action: 'delete', outcome: 'ok' });
    req.log.info({ admin: 'delete', ip: req.ip, room, closed: done.closed, instances: done.instances }, 'admin: room deleted');
    return { deleted: true, closed: done.closed, instances: done.instances };
  });
}
