/** The README's configuration tables list every schema variable, with the schema's default. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEnv, variablesOf } from '../../src/config/env.js';
import { serverEnvSchema } from '../../src/config/server-config.js';
import { turnEnvSchema } from '../../src/config/turn-config.js';

const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');

/** name -> default cell of the first table after the heading. */
function table(heading: string): Map<string, string> {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, `README has a "${heading}" section`).toBeGreaterThanOrEqual(0);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(/\n#{1,3} /);
  const rows = new Map<string, string>();
  for (const line of (end >= 0 ? rest.slice(0, end) : rest).split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name) rows.set(name, cells[2] ?? '');
  }
  return rows;
}

function rendered(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

describe.each([
  ['### Server', serverEnvSchema, {}],
  ['### TURN server', turnEnvSchema, { TURN_SECRET: 'placeholder-secret-of-32-bytes-or-more' }],
])('README %s table', (heading, schema, required) => {
  const defaults = parseEnv(schema, required) as Record<string, unknown>;

  it.each(variablesOf(schema))('documents %s with its default', (name) => {
    const rows = table(heading);
    expect(rows.has(name), `${name} is in the table`).toBe(true);
    const cell = rows.get(name) ?? '';
    const value = defaults[name];
    if (name in required) expect(cell).toMatch(/^required/);
    else if (value === undefined) expect(cell).toMatch(/unset/);
    else expect(cell).toContain(`\`${rendered(value)}\``);
  });

  it('lists nothing that is not in the schema', () => {
    expect([...table(heading).keys()].filter((n) => !variablesOf(schema).includes(n))).toEqual([]);
  });
});

describe('README basics', () => {
  it('gives the two commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
