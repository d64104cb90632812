/**
 * Every refusal the suite makes, defined once: its HTTP status and WebSocket close code.
 * Codes are never reused; docs/errors.md lists each (a test pins both).
 */
export const CloseCode = {
  MessageTooBig: 1009,
  /** RFC 6455 "internal error": storage could not load the room, or the server failed; clients retry. */
  InternalError: 1011,
  ServiceRestart: 1012,
  /** RFC 6455 "try again later": the instance is at MAX_CONNECTIONS (not a SPEC code; 4409 means room full). */
  TryAgainLater: 1013,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  RoomFull: 4409,
  RateLimited: 4429,
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
  ERR_UPDATE_TOO_COSTLY: { httpStatus: 413, closeCode: CloseCode.TooCostly, message: 'update over a cost limit' },
  ERR_AWARENESS_TOO_COSTLY: { httpStatus: 413, closeCode: CloseCode.TooCostly, message: 'presence over a limit' },
});
export type ErrorCode = keyof typeof Errors;

/** A refusal that carries its definition, for handlers that close a socket or answer HTTP. */
export class SyncError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly closeCode: CloseCode;
  constructor(code: ErrorCode, detail?: string) {
    const def = Errors[code];
    super(detail ? `${def.message}: ${detail}` : def.message);
    this.name = 'SyncError';
    this.code = code;
    this.httpStatus = def.httpStatus;
    this.closeCode = def.closeCode;
  }
}

/** WebSocket close reasons are limited to 123 bytes. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  return new TextDecoder().decode(bytes.subarray(0, 120)).replace(/\uFFFD+$/, '') + '...';
}
