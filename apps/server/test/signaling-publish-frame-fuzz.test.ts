/**
 * Fuzz: publishFrame (signaling/publish-frame.ts) against generated publishes spelled every way
 * JSON allows (whitespace, escapes, number spellings, duplicate keys, `__proto__`, brackets and
 * `"topic"` inside strings, bytes that are not UTF-8). Whatever path it takes (splice or
 * re-serialize), every frame it makes is valid UTF-8 JSON that means what the server decided:
 * - JSON.parse gives the value the server parsed, with `clients`: exactly when spliced, as
 *   JSON.stringify({ ...fields, clients }) writes it when re-serialized (-0 as 0, 1e400 as null);
 * - a parser that keeps the first of duplicate keys reads the same `type`, `topic` and `clients`.
 * The generator is seeded: a failure names the seed (FUZZ_SEED reproduces it).
 */
import { isUtf8 } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readSignalingMessage } from '@sync-suite/shared';
import { framePayload, publishFrame } from '../src/signaling/publish-frame.js';
import { prng, type Random } from './signaling-fuzz-frames.js';

/** 10,000 in CI (about a second); `npm run fuzz` sets FUZZ_ITERATIONS higher. */
const CASES = Number(process.env['FUZZ_ITERATIONS'] ?? 10_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);

const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

const ROOMS = ['fuzz-conversation-1', 'fuzz-conversation-2'];
const KEYS = ['type', 'topic', 'clients', 'data', 'to', 'from', '__proto__', 'constructor', 'toString', 't\\u006fpic', 'ty\\u0070e', 'cl\\u0069ents', 'topic ', 'Topic', ''];
const NUMBERS = ['0', '-0', '-0.0', '0e5', '1.50', '1e2', '1E+2', '1e400', '-1e400', '1e-400', '5e-324', '12345678901234567890', '0.1', '-7', '9007199254740993'];
/** pieces of string content, as JSON text (escaped where JSON requires it) */
const PIECES = ['a', ' ', '}', '{', '[', ']', ',', ':', '\\"', '\\\\', '\\/', '\\b\\f\\n\\r\\t', 'topic', '\\"topic\\"', 'clients', 'publish', '\u00e9', '\u2028', '\uFEFF', '\u{1F600}', '\\u0041', '\\ud800', '\\udfff', '\\ud83d\\ude00', '\\u0000', '\\u007d', '\\u0022'];

function ws(r: Random): string {
  return r() < 0.7 ? '' : pick(r, [' ', '\n', '\t', '\r\n', '  ', ' \t\r\n']);
}

function str(r: Random): string {
  let s = '';
  for (let n = int(r, 6); n > 0; n--) s += pick(r, PIECES);
  return `"${s}"`;
}

function value(r: Random, depth: number): string {
  switch (int(r, depth > 5 ? 5 : 8)) {
    case 0: return pick(r, ['true', 'false', 'null']);
    case 1: return pick(r, NUMBERS);
    case 2:
    case 3: return str(r);
    case 4: return `"${pick(r, ROOMS)}"`;
    case 5: return `[${ws(r)}${Array.from({ length: int(r, 4) }, () => value(r, depth + 1)).join(`${ws(r)},${ws(r)}`)}${ws(r)}]`;
    default: return object(r, depth + 1, []);
  }
}

function member(r: Random, key: string, depth: number, v = value(r, depth)): string {
  return `${ws(r)}"${key}"${ws(r)}:${ws(r)}${v}${ws(r)}`;
}

function object(r: Random, depth: number, required: string[]): string {
  const members = [...required];
  for (let n = int(r, 5); n > 0; n--) members.splice(int(r, members.length + 1), 0, member(r, pick(r, KEYS), depth));
  return `{${members.join(',') || ws(r)}}`;
}

/** A publish as a client could spell it: sometimes with duplicate or escaped keys, or not a publish at all. */
function publishText(r: Random): string {
  const topic = pick(r, ROOMS);
  const required = [member(r, 'type', 0, '"publish"'), member(r, 'topic', 0, `"${topic}"`)];
  if (r() < 0.3) required.unshift(member(r, pick(r, ['type', 'topic', 'ty\\u0070e', 't\\u006fpic']), 0, pick(r, ['"subscribe"', '"ping"', `"${pick(r, ROOMS)}"`, '1'])));
  if (r() < 0.2) required.push(member(r, 'data', 0, object(r, 1, [member(r, pick(r, ['type', 'topic']), 2, `"${pick(r, ROOMS)}"`)])));
  if (r() < 0.1) {
    const n = 60 + int(r, 10); // around SPLICE_MAX_BRACKETS
    required.push(member(r, 'data', 0, `${'['.repeat(n)}${']'.repeat(n)}`));
  }
  return `${ws(r)}${object(r, 0, required)}${ws(r)}`;
}

function received(r: Random): Buffer {
  const bytes = Buffer.from(publishText(r));
  if (r() < 0.05) {
    // a binary frame whose bytes are not UTF-8, inside the first string's content
    const at = bytes.indexOf(0x22) + 1;
    return Buffer.concat([bytes.subarray(0, at), Buffer.from([pick(r, [0xff, 0xc0, 0xed, 0x80])]), bytes.subarray(at)]);
  }
  return bytes;
}

/** Top-level members of a JSON object text in order, duplicates kept (the payload is known valid JSON). */
function topLevelMembers(text: string): Array<[string, unknown]> {
  let at = 0;
  const skipWs = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const skipString = () => {
    at++;
    while (text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
    at++;
  };
  /** moves `at` past the value that starts there */
  const skipValue = (): void => {
    if (text[at] === '"') return skipString();
    if (text[at] !== '{' && text[at] !== '[') {
      while (at < text.length && !',}] \t\n\r'.includes(text[at]!)) at++;
      return;
    }
    let depth = 0;
    do {
      const c = text[at]!;
      if (c === '"') {
        skipString();
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') depth--;
      at++;
    } while (depth > 0);
  };
  const members: Array<[string, unknown]> = [];
  skipWs();
  at++; // {
  for (;;) {
    skipWs();
    if (text[at] === '}') return members;
    const keyStart = at;
    skipValue();
    const key = JSON.parse(text.slice(keyStart, at)) as string;
    skipWs();
    at++; // :
    skipWs();
    const valueStart = at;
    skipValue();
    members.push([key, JSON.parse(text.slice(valueStart, at))]);
    skipWs();
    if (text[at] === ',') at++;
  }
}

/** As re-serializing gives it: -0 becomes 0, a number out of range (1e400, parsed as Infinity) null. */
const normalized = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

/**
 * Whether `payload` is the received bytes with `,"clients":N` spliced in (not a re-serialization):
 * all of them up to their closing brace. A re-serialization may begin with the same bytes as
 * what was received (seed 617797 case 3817: the received publish went on with a duplicate key).
 */
function spliced(received: Buffer, payload: Buffer, clients: number): boolean {
  const suffix = Buffer.from(`,"clients":${clients}}`);
  const head = payload.length - suffix.length;
  return head > 0 && payload.subarray(head).equals(suffix) && received.subarray(0, head).equals(payload.subarray(0, head)) && /^}[ \t\n\r]*$/.test(received.subarray(head).toString('latin1'));
}

const firstOf = (members: Array<[string, unknown]>, key: string) => members.find(([k]) => k === key)?.[1];

describe('publishFrame fuzz', () => {
  it(`every frame of ${CASES} generated publishes is valid JSON meaning what the server decided (seed ${SEED})`, () => {
    const r = prng(SEED);
    let checked = 0;
    let splices = 0;
    for (let i = 0; i < CASES; i++) {
      const bytes = received(r);
      const read = readSignalingMessage(bytes.toString('utf8'));
      if (!read.ok || read.message.type !== 'publish') continue;
      const { topic, fields } = read.message;
      const clients = int(r, 3) === 0 ? int(r, 1e6) : 1 + int(r, 9);
      let frame: Buffer;
      try {
        frame = publishFrame(fields, bytes, clients);
      } catch (err) {
        expect(err, `seed ${SEED} case ${i}: ${String(bytes)}`).toBeInstanceOf(RangeError);
        continue;
      }
      const payload = framePayload(frame);
      const context = `seed ${SEED} case ${i}: received ${JSON.stringify(String(bytes))}, sent ${JSON.stringify(String(payload))}`;
      expect(isUtf8(payload), context).toBe(true);
      const text = payload.toString('utf8');
      const value: unknown = JSON.parse(text);
      const published = { ...fields, clients };
      // isDeepStrictEqual: -0 is not 0 (toStrictEqual would also compare own `constructor` keys as types)
      expect(isDeepStrictEqual(normalized(value), normalized(published)), context).toBe(true);
      // Spliced, the numbers keep their spelling: exactly the value the server parsed, -0 and 1e400 included.
      if (spliced(bytes, payload, clients)) {
        splices++;
        expect(isDeepStrictEqual(value, published), context).toBe(true);
      } else expect(isDeepStrictEqual(value, normalized(published)), context).toBe(true);
      const members = topLevelMembers(text);
      expect([firstOf(members, 'type'), firstOf(members, 'topic'), firstOf(members, 'clients')], context).toEqual(['publish', topic, clients]);
      checked++;
    }
    // most generated texts are publishes the server accepts
    expect(checked).toBeGreaterThan(CASES / 2);
    expect(splices).toBeGreaterThan(checked / 10); // about a fifth take the splice

  });
});
