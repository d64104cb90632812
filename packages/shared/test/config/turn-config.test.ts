import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import { turnConfigSchema } from '../../src/config/turn-config.js';

const SECRET = 'turn-secret-of-at-least-32-bytes-1234';
const parse = (env: Record<string, string | undefined>) => parseEnv(turnConfigSchema, { TURN_SECRET: SECRET, ...env });

function variableOf(env: Record<string, string | undefined>): string {
  try {
    parse(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.variable;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('TURN config', () => {
  it('has the documented defaults', () => {
    const config = parse({});
    for (const unset of ['TURN_RELAY_IP', 'TURN_EXTERNAL_IP', 'TURN_DENY_PEERS'] as const) expect(config[unset]).toBeUndefined();
    expect(config).toMatchObject({
      TURN_LISTEN_IP: '0.0.0.0',
      TURN_PORT: 3478,
      TURN_SECRET: SECRET,
      TURN_REALM: 'sync-suite',
      TURN_TTL_SECONDS: 3600,
      TURN_MIN_PORT: 49152,
      TURN_MAX_PORT: 65535,
      TURN_ALLOW_LOOPBACK_PEERS: false,
      TURN_USER_QUOTA: 10,
      TURN_TOTAL_QUOTA: 1000,
      TURN_METRICS_PORT: 9641,
      TURN_UDP_INTERNALS: true,
      TURN_UDP_NATIVE: true,
      LOG_LEVEL: 'info',
    });
  });

  it('requires TURN_SECRET', () => {
    expect(() => parseEnv(turnConfigSchema, {})).toThrow(/^invalid configuration: TURN_SECRET: /);
  });

  it('parses addresses, ranges and lists', () => {
    expect(
      parse({
        TURN_LISTEN_IP: '127.0.0.1',
        TURN_RELAY_IP: '::1',
        TURN_EXTERNAL_IP: '203.0.113.7',
        TURN_DENY_PEERS: '10.0.0.0/8, 192.168.0.0/16',
        TURN_ALLOW_LOOPBACK_PEERS: 'true',
      }),
    ).toMatchObject({
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '::1',
      TURN_EXTERNAL_IP: '203.0.113.7',
      TURN_DENY_PEERS: ['10.0.0.0/8', '192.168.0.0/16'],
      TURN_ALLOW_LOOPBACK_PEERS: true,
    });
  });

  it.each([
    ['TURN_LISTEN_IP', 'localhost'],
    ['TURN_PORT', 'udp'],
    ['TURN_SECRET', 'short'],
    // as AUTH_SECRET: one issued username and password is enough to guess a short secret offline
    ['TURN_SECRET', 'x'.repeat(31)],
    ['TURN_SECRET', 'é'.repeat(15)],
    ['TURN_SECRET_PREVIOUS', 'sunshine1'],
    ['TURN_TTL_SECONDS', '0'],
    ['TURN_RELAY_IP', '300.1.1.1'],
    ['TURN_EXTERNAL_IP', 'example.com'],
    ['TURN_MIN_PORT', '70000'],
    ['TURN_MAX_PORT', 'x'],
    ['TURN_ALLOW_LOOPBACK_PEERS', 'sure'],
    ['TURN_UDP_INTERNALS', 'maybe'],
    ['TURN_UDP_NATIVE', 'maybe'],
    ['TURN_USER_QUOTA', '0'],
    ['TURN_TOTAL_QUOTA', '-1'],
    ['TURN_METRICS_PORT', '65536'],
    ['LOG_LEVEL', 'verbose'],
  ])('%s=%j names the variable', (name, value) => {
    expect(variableOf({ [name]: value })).toBe(name);
  });

  it('refuses TURN_MIN_PORT above TURN_MAX_PORT', () => {
    expect(variableOf({ TURN_MIN_PORT: '50000', TURN_MAX_PORT: '49999' })).toBe('TURN_MIN_PORT');
  });
});
