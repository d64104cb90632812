import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import { serverConfigSchema } from '../../src/config/server-config.js';

const SECRET = 'x'.repeat(32);
const parse = (env: Record<string, string | undefined>) => parseEnv(serverConfigSchema, env);

/** Fails with the ConfigError that parse throws, so assertions can look at it. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    parse(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('server config: documented defaults', () => {
  const config = parse({});
  it.each([
    ['HOST', '0.0.0.0'],
    ['PORT', 4444],
    ['AUTH_SECRET', undefined],
    ['STORAGE', 'sqlite'],
    ['DATA_DIR', './data'],
    ['DATABASE_URL', undefined],
    ['REDIS_URL', undefined],
    ['ROOM_PREFIX', undefined],
    ['ROOM_TYPES', ['conversation', 'assistant', 'preference']],
    ['TURN_SECRET', undefined],
    ['TURN_URLS', undefined],
    ['TURN_TTL_SECONDS', 3600],
    ['MAX_PEERS_PER_ROOM', 50],
    ['MAX_TOPICS_PER_CONNECTION', 100],
    ['SIGNALING_MAX_MESSAGE_BYTES', 65536],
    ['RELAY_MAX_MESSAGE_BYTES', 10485760],
    ['MAX_MESSAGES_PER_SECOND', 200],
    ['PERSIST_FLUSH_MS', 50],
    ['METRICS_TOKEN', undefined],
    ['LOG_LEVEL', 'info'],
  ])('%s defaults to %j', (name, expected) => {
    expect((config as Record<string, unknown>)[name]).toEqual(expected);
  });

  it('our own additions have defaults too', () => {
    expect(config).toMatchObject({
      NODE_ENV: 'development',
      MAX_CONNECTIONS: 10000,
      ROOM_IDLE_MS: 5000,
      SHUTDOWN_TIMEOUT_MS: 10000,
      TRUST_PROXY: false,
      WARM_UP_AT_START: true,
    });
  });
});

describe('server config: values are parsed', () => {
  it('coerces numbers, lists and booleans', () => {
    const config = parse({
      PORT: '8080',
      ROOM_TYPES: ' doc , note ,',
      TURN_URLS: 'turn:a.example:3478,turns:a.example:5349?transport=tcp',
      TRUST_PROXY: 'yes',
      MAX_PEERS_PER_ROOM: '10',
      AUTH_SECRET: SECRET,
    });
    expect(config).toMatchObject({
      PORT: 8080,
      ROOM_TYPES: ['doc', 'note'],
      TURN_URLS: ['turn:a.example:3478', 'turns:a.example:5349?transport=tcp'],
      TRUST_PROXY: true,
      MAX_PEERS_PER_ROOM: 10,
      AUTH_SECRET: SECRET,
    });
  });

  it('accepts whole numbers with surrounding spaces', () => {
    expect(parse({ PORT: ' 8080 ', ROOM_IDLE_MS: '0' })).toMatchObject({ PORT: 8080, ROOM_IDLE_MS: 0 });
  });

  it('treats an empty value as unset (FOO= in an env file)', () => {
    const config = parse({ PORT: '', AUTH_SECRET: '' });
    expect(config.PORT).toBe(4444);
    expect(config.AUTH_SECRET).toBeUndefined();
  });

  it('accepts postgres with Redis fan-out', () => {
    const config = parse({ STORAGE: 'postgres', DATABASE_URL: 'postgres://u@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(config).toMatchObject({ STORAGE: 'postgres', REDIS_URL: 'redis://127.0.0.1:6379' });
  });

  it('accepts production with AUTH_SECRET', () => {
    expect(parse({ NODE_ENV: 'production', AUTH_SECRET: SECRET }).NODE_ENV).toBe('production');
  });
});

describe('server config: invalid values name the variable', () => {
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '12.5'],
    ['PORT', '0x10'],
    ['PORT', '1e3'],
    ['PORT', '   '],
    ['ROOM_IDLE_MS', '-1'],
    ['SHUTDOWN_TIMEOUT_MS', 'ten'],
    ['STORAGE', 'mysql'],
    ['DATABASE_URL', 'mysql://u@host/db'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['ROOM_PREFIX', 'Has-Capitals'],
    ['ROOM_PREFIX', 'x'.repeat(40)],
    ['ROOM_TYPES', ','],
    ['ROOM_TYPES', 'conversation,with-dash'],
    ['AUTH_SECRET', 'too-short'],
    ['TURN_SECRET', 'short'],
    ['TURN_SECRET', 'x'.repeat(31)],
    ['TURN_URLS', 'http://turn.example'],
    ['TURN_TTL_SECONDS', '0'],
    ['MAX_PEERS_PER_ROOM', 'many'],
    ['MAX_TOPICS_PER_CONNECTION', '-5'],
    ['SIGNALING_MAX_MESSAGE_BYTES', '0'],
    ['RELAY_MAX_MESSAGE_BYTES', '1.5'],
    ['MAX_MESSAGES_PER_SECOND', 'fast'],
    ['PERSIST_FLUSH_MS', '0'],
    ['TRUST_PROXY', 'maybe'],
    ['LOG_LEVEL', 'loud'],
  ])('%s=%j', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.variable).toBe(name);
    expect(err.message).toMatch(new RegExp(`^invalid configuration: ${name}: \\S`));
    expect(err.message).not.toContain('\n');
  });

  it('never prints the secret it refuses', () => {
    expect(configError({ AUTH_SECRET: 'my-short-secret' }).message).not.toContain('my-short-secret');
  });
});

describe('server config: rules across variables', () => {
  it('NODE_ENV=production without AUTH_SECRET is refused', () => {
    const err = configError({ NODE_ENV: 'production' });
    expect(err.variable).toBe('AUTH_SECRET');
    expect(err.problem).toMatch(/production/);
  });

  // Operators write it as they like; auth must not silently stay off because of a capital or a space.
  it.each(['Production', 'PRODUCTION', ' production', 'production\n'])('NODE_ENV=%j without AUTH_SECRET is refused too', (value) => {
    const err = configError({ NODE_ENV: value });
    expect(err.variable).toBe('AUTH_SECRET');
    expect(err.problem).toMatch(/production/);
  });

  it('REDIS_URL without STORAGE=postgres is refused', () => {
    const err = configError({ REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(err.variable).toBe('REDIS_URL');
    expect(err.problem).toMatch(/STORAGE=postgres/);
    expect(configError({ REDIS_URL: 'redis://127.0.0.1:6379', STORAGE: 'memory' }).variable).toBe('REDIS_URL');
  });

  it('with REDIS_URL, a REDIS_MAX_RELAY_MESSAGE_BYTES below the presence limits (+128) is refused', () => {
    const cluster = { REDIS_URL: 'redis://127.0.0.1:6379', STORAGE: 'postgres', DATABASE_URL: 'postgres://127.0.0.1/x' };
    const err = configError({ ...cluster, REDIS_MAX_RELAY_MESSAGE_BYTES: '4096' });
    expect(err.variable).toBe('REDIS_MAX_RELAY_MESSAGE_BYTES');
    expect(err.problem).toMatch(/16512/);
    expect(configError({ ...cluster, REDIS_MAX_RELAY_MESSAGE_BYTES: '8192', SEALED_MAX_PRESENCE_BYTES: '4096' }).variable).toBe('REDIS_MAX_RELAY_MESSAGE_BYTES');
    expect(parseEnv(serverConfigSchema, { ...cluster, REDIS_MAX_RELAY_MESSAGE_BYTES: '8192', SEALED_MAX_PRESENCE_BYTES: '4096', RELAY_MAX_AWARENESS_BYTES: '4096' }).REDIS_MAX_RELAY_MESSAGE_BYTES).toBe(8192);
    // without Redis the bound is unused
    expect(parseEnv(serverConfigSchema, { REDIS_MAX_RELAY_MESSAGE_BYTES: '4096' }).REDIS_MAX_RELAY_MESSAGE_BYTES).toBe(4096);
  });

  it('MAX_UNSENT_BYTES_TOTAL defaults to 256 MiB and below twice RELAY_MAX_MESSAGE_BYTES is refused', () => {
    expect(parseEnv(serverConfigSchema, {}).MAX_UNSENT_BYTES_TOTAL).toBe(268435456);
    const err = configError({ MAX_UNSENT_BYTES_TOTAL: '20971519' }); // RELAY_MAX_MESSAGE_BYTES 10 MiB
    expect(err.variable).toBe('MAX_UNSENT_BYTES_TOTAL');
    expect(err.problem).toMatch(/twice RELAY_MAX_MESSAGE_BYTES/);
    expect(parseEnv(serverConfigSchema, { MAX_UNSENT_BYTES_TOTAL: '4194304', RELAY_MAX_MESSAGE_BYTES: '2097152' }).MAX_UNSENT_BYTES_TOTAL).toBe(4194304);
  });

  it('STORAGE=postgres without DATABASE_URL is refused', () => {
    expect(configError({ STORAGE: 'postgres' }).variable).toBe('DATABASE_URL');
  });
});
