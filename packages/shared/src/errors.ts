/**
 * Every refusal the suite makes, defined once: its HTTP status, WebSocket close code and
 * message. A socket closed for an error carries the message as its close reason (closeWith);
 * an HTTP refusal answers errorBody. Codes are never reused; docs/errors.md lists each (a
 * test pins both).
 */
export const CloseCode = {
  MessageTooBig: 1009,
  /** RFC 6455 "internal error": storage could not load the room, or the server failed; clients retry. */
  InternalError: 1011,
  ServiceRestart: 1012,
  /** RFC 6455 "try again later": the instance is at MAX_CONNECTIONS (4409 means a full room; this is a full server). */
  TryAgainLater: 1013,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  RoomFull: 4409,
  RateLimited: 4429,
  /** the room was deleted through the admin API */
  RoomDeleted: 4410,
  /** the room's stored size reached ROOM_MAX_BYTES (mirrors HTTP 507 Insufficient Storage) */
  StorageQuota: 4507,
  /** a relay update or presence state over a cost limit (README "Server", docs/limits.md); the reason names the limit */
  TooCostly: 4413,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export interface ErrorDefinition {
  code: string;
  httpStatus: number;
  closeCode: CloseCode;
  message: string;
}

function define<K extends string>(defs: Record<K, Omit<ErrorDefinition, 'code'>>): Record<K, ErrorDefinition> {
  const out = {} as Record<K, ErrorDefinition>;
  for (const key of Object.keys(defs) as K[]) out[key] = { code: key, ...defs[key] };
  return out;
}

export const Errors = define({
  ERR_MESSAGE_TOO_BIG: { httpStatus: 413, closeCode: CloseCode.MessageTooBig, message: 'frame larger than the limit' },
  ERR_ROOM_UNAVAILABLE: { httpStatus: 500, closeCode: CloseCode.InternalError, message: 'room could not be loaded' },
  ERR_INTERNAL: { httpStatus: 500, closeCode: CloseCode.InternalError, message: 'internal error' },
  ERR_SHUTTING_DOWN: { httpStatus: 503, closeCode: CloseCode.ServiceRestart, message: 'server restarting' },
  ERR_ROOM_NAME: { httpStatus: 400, closeCode: CloseCode.BadRequest, message: 'malformed room name' },
  ERR_PROTOCOL: { httpStatus: 400, closeCode: CloseCode.BadRequest, message: 'malformed protocol message' },
  ERR_TOKEN_MISSING: { httpStatus: 401, closeCode: CloseCode.Unauthorized, message: 'missing token' },
  ERR_TOKEN_INVALID: { httpStatus: 401, closeCode: CloseCode.Unauthorized, message: 'invalid or expired token' },
  ERR_FORBIDDEN_ROOM: { httpStatus: 403, closeCode: CloseCode.Forbidden, message: 'token does not cover the room' },
  ERR_ROOM_FULL: { httpStatus: 409, closeCode: CloseCode.RoomFull, message: 'room full' },
  ERR_TOO_MANY_TOPICS: { httpStatus: 409, closeCode: CloseCode.RoomFull, message: 'too many topics on one connection' },
  ERR_TOO_MANY_CONNECTIONS: { httpStatus: 503, closeCode: CloseCode.TryAgainLater, message: 'too many connections' },
  ERR_RATE_LIMITED: { httpStatus: 429, closeCode: CloseCode.RateLimited, message: 'message rate limit' },
  ERR_ROOM_RELOADING: { httpStatus: 503, closeCode: CloseCode.ServiceRestart, message: 'room reloading' },
  ERR_ROOM_SEALED: { httpStatus: 403, closeCode: CloseCode.Forbidden, message: 'room is sealed' },
  ERR_TOO_MANY_UPGRADES: { httpStatus: 429, closeCode: CloseCode.RateLimited, message: 'too many unauthenticated connections from this address' },
  ERR_TOKEN_EXPIRED: { httpStatus: 401, closeCode: CloseCode.Unauthorized, message: 'token expired' },
  ERR_TOKEN_REVOKED: { httpStatus: 401, closeCode: CloseCode.Unauthorized, message: 'token revoked' },
  ERR_ROOM_DELETED: { httpStatus: 410, closeCode: CloseCode.RoomDeleted, message: 'room deleted' },
  ERR_ROOM_QUOTA: { httpStatus: 507, closeCode: CloseCode.StorageQuota, message: 'room storage quota reached' },
  ERR_TOO_MANY_NEW_ROOMS: { httpStatus: 429, closeCode: CloseCode.RateLimited, message: 'too many new rooms for this sub' },
  ERR_TOO_MANY_TOPIC_JOINS: { httpStatus: 429, closeCode: CloseCode.RateLimited, message: 'too many topic joins' },
  ERR_TOO_MANY_CONNECTIONS_PER_SUB: { httpStatus: 429, closeCode: CloseCode.RateLimited, message: 'too many connections for this sub' },
  ERR_BAD_REQUEST: { httpStatus: 400, closeCode: CloseCode.BadRequest, message: 'malformed request' },
  ERR_TOKEN_TTL: { httpStatus: 401, closeCode: CloseCode.Unauthorized, message: 'token lives longer than TOKEN_MAX_TTL_SECONDS' },
  ERR_UPDATE_TOO_COSTLY: { httpStatus: 413, closeCode: CloseCode.TooCostly, message: 'update over a cost limit' },
  ERR_AWARENESS_TOO_COSTLY: { httpStatus: 413, closeCode: CloseCode.TooCostly, message: 'presence over a limit' },
});
export type ErrorCode = keyof typeof Errors;

/** The close code and close reason of a socket closed for `code`: the table's message. */
export function closeWith(code: ErrorCode): [CloseCode, string] {
  const def = Errors[code];
  return [def.closeCode, closeReason(def.message)];
}

/** The JSON body of an HTTP refusal: `{"error": "<code>", "message": "..."}` (docs/errors.md). */
export function errorBody(code: ErrorCode, message: string = Errors[code].message): { error: ErrorCode; message: string } {
  return { error: code, message };
}

/** WebSocket close reasons are limited to 123 bytes. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD+$/, '') + '...';
}
