/**
 * What a token's `sub` or `jti` may be: what `POST /admin/revoke` can name
 * (apps/server/src/routes/admin/revoke.ts). verifyRoomToken refuses any other, so no token
 * verifies that could not be revoked.
 */
export const TOKEN_ID_MAX_LENGTH = 512;

/** C0 and C1 control characters and DEL: never in a sub or jti (PostgreSQL refuses a NUL). */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** A non-empty string of at most TOKEN_ID_MAX_LENGTH characters, without control characters. */
export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= TOKEN_ID_MAX_LENGTH && !CONTROL_CHARACTER.test(value);
}
