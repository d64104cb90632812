/** SECURITY.md lists every limit-like variable of both schemas, with the schema's default. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEnv, variablesOf } from '../../src/config/env.js';
import { serverEnvSchema } from '../../src/config/server-config.js';
import { turnEnvSchema } from '../../src/config/turn-config.js';

const doc = readFileSync(new URL('../../../../SECURITY.md', import.meta.url), 'utf8');
const LIMIT_LIKE = /MAX|LIMIT|TIMEOUT|QUOTA|TTL|LIFETIME|RATE|BYTES|PER_|INTERVAL|IDLE|FLUSH|COMPACT|DENY|TRUST_PROXY|ALLOW|_PORT$/;

describe.each([
  ['server', serverEnvSchema, {}],
  ['TURN', turnEnvSchema, { TURN_SECRET: 'placeholder-secret-of-32-bytes-or-more' }],
])('SECURITY.md, %s limits', (_name, schema, required) => {
  const defaults = parseEnv(schema, required) as Record<string, unknown>;
  const limits = variablesOf(schema).filter((v) => LIMIT_LIKE.test(v) && !/^(PORT|TURN_PORT|TURN_METRICS_PORT)$/.test(v));

  it.each(limits)('lists %s with its default', (name) => {
    const row = doc.split('\n').find((line) => line.startsWith('| `') && line.includes(`\`${name}\``));
    expect(row, `a row for ${name}`).toBeDefined();
    const value = defaults[name];
    if (value !== undefined) expect(row).toContain(`\`${String(value)}\``);
  });
});
