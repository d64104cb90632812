/**
 * Prints a room token: npm run token -- --sub alice --room 'the-boss-conversation-*' --ttl 3600 [--scope read]
 * Reads AUTH_SECRET from the environment (or --secret).
 */
import { parseArgs } from 'node:util';
import { createRoomToken } from '../auth/room-token.js';
import { TOKEN_ID_MAX_LENGTH, isTokenId } from '../auth/token-id.js';
import { positiveInt } from '../config/env.js';
import { authSecret } from '../config/server-config.js';

const USAGE = "usage: npm run token -- --sub ID --room NAME_OR_PREFIX* [--room ...] [--ttl SECONDS] [--scope write|read]";

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(1);
}

function parse() {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (err) {
    // Unknown flags and missing values: one line, not a stack trace.
    return fail(err instanceof Error ? err.message : String(err));
  }
}

const OPTIONS = {
  sub: { type: 'string' },
  room: { type: 'string', multiple: true },
  ttl: { type: 'string', default: '3600' },
  scope: { type: 'string', default: 'write' },
  secret: { type: 'string' },
  help: { type: 'boolean' },
} as const;

async function main(): Promise<void> {
  const { values } = parse();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const secret = values.secret ?? process.env['AUTH_SECRET'];
  const ttl = positiveInt.safeParse(values.ttl);
  if (!secret) fail('AUTH_SECRET is not set (or pass --secret)');
  // The server refuses shorter secrets (the same schema), so a token signed with one could never be used.
  if (!authSecret.safeParse(secret).success) fail('AUTH_SECRET must be at least 32 bytes, as the server requires');
  if (!values.sub) fail('--sub is required');
  // The server refuses such a sub (auth/token-id.ts): one line here, not createRoomToken's stack trace.
  if (!isTokenId(values.sub)) fail(`--sub must be at most ${TOKEN_ID_MAX_LENGTH} characters, without control characters`);
  if (!values.room?.length) fail('--room is required');
  if (!ttl.success) fail('--ttl must be a positive integer');
  if (values.scope !== 'write' && values.scope !== 'read') fail('--scope must be write or read');
  const token = await createRoomToken(secret as string, {
    sub: values.sub as string,
    rooms: values.room as string[],
    ttlSeconds: ttl.data as number,
    scope: values.scope as 'write' | 'read',
  });
  process.stdout.write(`${token}\n`);
}

await main();
