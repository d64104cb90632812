/**
 * Prints a room token: npm run token -- --sub alice --room 'the-boss-conversation-*' --ttl 3600 [--scope read]
 * Reads AUTH_SECRET from the environment (or --secret).
 */
import { parseArgs } from 'node:util';
import { createRoomToken } from '../auth/room-token.js';

const USAGE = "usage: npm run token -- --sub ID --room NAME_OR_PREFIX* [--room ...] [--ttl SECONDS] [--scope write|read]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      room: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '3600' },
      scope: { type: 'string', default: 'write' },
      secret: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const secret = values.secret ?? process.env['AUTH_SECRET'];
  const ttl = Number(values.ttl);
  const fail = (msg: string): never => {
    process.stderr.write(`${msg}\n${USAGE}\n`);
    process.exit(1);
  };
  if (!secret) fail('AUTH_SECRET is not set (or pass --secret)');
  if (!values.sub) fail('--sub is required');
  if (!values.room?.length) fail('--room is required');
  if (!Number.isInteger(ttl) || ttl <= 0) fail('--ttl must be a positive integer');
  if (values.scope !== 'write' && values.scope !== 'read') fail('--scope must be write or read');
  const token = await createRoomToken(secret as string, {
    sub: values.sub as string,
    rooms: values.room as string[],
    ttlSeconds: ttl,
    scope: values.scope as 'write' | 'read',
  });
  process.stdout.write(`${token}\n`);
}

await main();
