import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, Errors, closeReason, closeWith, errorBody, type ErrorCode } from '../../src/errors.js';

const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
const entries = Object.entries(Errors) as Array<[ErrorCode, (typeof Errors)[ErrorCode]]>;

describe('error definitions', () => {
  it('pins the number of codes (update docs/errors.md when this changes)', () => {
    expect(entries).toHaveLength(27);
    expect(Object.keys(CloseCode)).toHaveLength(12);
  });

  it('each definition carries its own key as code', () => {
    for (const [key, def] of entries) expect(def.code).toBe(key);
  });

  it('close codes are unique names for unique numbers', () => {
    const values = Object.values(CloseCode);
    expect(new Set(values).size).toBe(values.length);
  });

  it('every close code is used by some error', () => {
    const used = new Set(entries.map(([, def]) => def.closeCode));
    for (const code of Object.values(CloseCode)) expect(used, `close code ${code}`).toContain(code);
  });

  it('a close code always pairs with the same HTTP status', () => {
    const http = new Map<number, number>();
    for (const [key, def] of entries) {
      const seen = http.get(def.closeCode);
      if (seen !== undefined) expect(def.httpStatus, `${key}`).toBe(seen);
      http.set(def.closeCode, def.httpStatus);
    }
  });

  it('application close codes (4xxx) mirror their HTTP status', () => {
    for (const [key, def] of entries) {
      if (def.closeCode >= 4000) expect(def.closeCode - 4000, key).toBe(def.httpStatus);
      else expect(def.closeCode === 1009 || def.closeCode === 1011 || def.closeCode === 1012 || def.closeCode === 1013, key).toBe(true);
    }
  });

  it('documented close codes keep their numbers', () => {
    expect(CloseCode).toMatchObject({
      MessageTooBig: 1009,
      ServiceRestart: 1012,
      BadRequest: 4400,
      Unauthorized: 4401,
      Forbidden: 4403,
      RoomFull: 4409,
      RateLimited: 4429,
      RoomDeleted: 4410,
    });
  });
});

describe('docs/errors.md', () => {
  it.each(entries)('documents %s with its HTTP status and close code', (key, def) => {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${key}\` |`));
    expect(row, `a table row for ${key}`).toBeDefined();
    expect(row).toContain(`| ${def.httpStatus} | ${def.closeCode} |`);
  });

  it.each(Object.values(CloseCode))('documents close code %d', (code) => {
    expect(doc).toContain(`| \`${code}\` |`);
  });
});

describe('closeWith and errorBody', () => {
  it('close with the code and the message of the table', () => {
    for (const [key, def] of entries) expect(closeWith(key)).toEqual([def.closeCode, def.message]);
  });

  it('answer HTTP refusals with the documented JSON shape', () => {
    expect(errorBody('ERR_ROOM_FULL')).toEqual({ error: 'ERR_ROOM_FULL', message: 'room full' });
    expect(errorBody('ERR_TOKEN_INVALID', 'metrics need a token')).toEqual({ error: 'ERR_TOKEN_INVALID', message: 'metrics need a token' });
  });
});

describe('closeReason', () => {
  it('keeps short reasons', () => {
    expect(closeReason('room full')).toBe('room full');
  });

  it('cuts long reasons to at most 123 bytes without splitting a character', () => {
    for (const text of ['x'.repeat(500), '\u00e9'.repeat(200), '\u{1F600}'.repeat(100)]) {
      const reason = closeReason(text);
      expect(new TextEncoder().encode(reason).length).toBeLessThanOrEqual(123);
      expect(reason.endsWith('...')).toBe(true);
      expect(reason).not.toContain('\uFFFD');
    }
  });
});
