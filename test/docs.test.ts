/**
 * The documentation says what the code does, for what can drift: every metric a document names
 * is defined (packages/shared/src/metrics/), every metric defined is documented somewhere,
 * refusal tables name the close code of their error (packages/shared/src/errors.ts), no server
 * code closes a socket with a reason of its own, and comments cite only files in this repo.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Errors, type ErrorCode } from '@sync-suite/shared';
import { createServerMetrics, createTurnMetrics, parseEnv, serverConfigSchema, serverEnvSchema, turnEnvSchema, variablesOf } from '@sync-suite/shared/node';
import { DEFAULT_DENY } from '../apps/turn/src/peer-filter.js';
import { buildServer } from '../apps/server/src/app.js';
import { REPO_ROOT } from './helpers/process.js';

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');
const DOCS = ['README.md', 'packages/client/README.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Every .ts file below `dir`, skipping node_modules and build output. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(REPO_ROOT, dir))) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(join(REPO_ROOT, path)).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function definedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const registry of [createServerMetrics().registry, createTurnMetrics().registry]) {
    for (const m of registry.getMetricsAsArray()) if (/^(sync|turn)_/.test(m.name)) names.add(m.name);
  }
  return names;
}

/** `sync_*` / `turn_*` metric names in a text (a name followed by `{`, a space or a backtick). */
function metricNames(text: string): string[] {
  return [...text.matchAll(/\b((?:sync|turn)_[a-z_]+[a-z])(?=[{`\s|,.)]|$)/gm)].map((m) => m[1] as string);
}

/** Full paths from Fastify's printRoutes tree, where a child line holds the rest of its parent's path. */
function routePaths(tree: string): string[] {
  const stack: string[] = [];
  const paths: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│├└─]*)(\S+) \([A-Z, ]+\)$/.exec(line);
    if (!m) continue;
    const depth = (m[1] as string).length / 4;
    stack.length = depth;
    stack.push(m[2] as string);
    paths.push(stack.join(''));
  }
  return paths;
}

describe('endpoints in the README', () => {
  it('the server has every endpoint of the README table, and the table has every route', async () => {
    const section = read('README.md').split('\n## Endpoints')[1]?.split('\n## ')[0] ?? '';
    const documented = [...section.matchAll(/`(GET|POST|PUT|DELETE|WS) (\/[^`?\s]*)/g)].map((m) => ({
      method: m[1] === 'WS' ? 'GET' : (m[1] as string),
      url: (m[2] as string).replace(/<[^>]+>$/, '*'),
      // the same placeholder as a named parameter (`/admin/rooms/:room`)
      param: (m[2] as string).replace(/<([^>]+)>$/, ':$1'),
    }));
    expect(documented.length).toBeGreaterThan(5);
    const app = await buildServer(parseEnv(serverConfigSchema, { STORAGE: 'memory', LOG_LEVEL: 'silent', ADMIN_TOKEN: 'admin-token-for-the-route-list' }));
    try {
      await app.ready();
      type Route = Parameters<typeof app.hasRoute>[0];
      for (const { method, url, param } of documented) {
        const found = app.hasRoute({ method, url } as Route) || app.hasRoute({ method, url: param } as Route);
        expect(found, `${method} ${url}`).toBe(true);
      }
      // Every route the server registers (HEAD and OPTIONS come with GET and CORS) is documented.
      const bare = (url: string): string => url.replace(/\/?(\*|:\w+)$/, '');
      const urls = new Set(documented.map((r) => bare(r.url)));
      expect(routePaths(app.printRoutes({ commonPrefix: false })).filter((p) => !urls.has(bare(p)))).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

describe('metrics in the docs', () => {
  const defined = definedMetrics();
  // Histogram samples are documented by their family name plus _bucket/_sum/_count.
  const family = (name: string): string => name.replace(/_(bucket|sum|count)$/, '');

  it.each(DOCS)('%s names only defined metrics', (doc) => {
    const unknown = metricNames(read(doc)).filter((n) => !defined.has(n) && !defined.has(family(n)));
    expect(unknown, `${doc} names metrics that no code defines`).toEqual([]);
  });

  it('every defined metric is documented somewhere', () => {
    const named = new Set(DOCS.flatMap((doc) => metricNames(read(doc))));
    expect([...defined].filter((n) => !named.has(n))).toEqual([]);
  });
});

describe('refusal tables against packages/shared/src/errors.ts', () => {
  it.each(['docs/PROTOCOL-relay.md', 'docs/PROTOCOL-signaling.md'])('%s: each error row has its close code', (doc) => {
    const rows = read(doc)
      .split('\n')
      .filter((line) => line.startsWith('|') && line.includes('`ERR_'));
    expect(rows.length).toBeGreaterThan(5);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      const codes = [...row.matchAll(/`(ERR_[A-Z_]+)`/g)].map((m) => m[1] as string);
      for (const code of codes) {
        expect(Object.keys(Errors), row).toContain(code);
        const def = Errors[code as ErrorCode];
        // Refusals on the upgrade request never become a WebSocket: their row gives the HTTP status.
        if (cells[2]?.startsWith('HTTP ')) expect(cells[2], row).toBe(`HTTP ${def.httpStatus} on the upgrade`);
        else expect(cells[2], row).toBe(String(def.closeCode));
      }
    }
  });

  it('docs/errors.md gives each code its message', () => {
    const doc = read('docs/errors.md');
    for (const [code, def] of Object.entries(Errors)) expect(doc).toContain(`| \`${code}\` | ${def.httpStatus} | ${def.closeCode} | ${def.message} |`);
  });

  it('no server code closes a socket with a code and reason of its own (closeWith gives both)', () => {
    const literal = /\.(close|reject|deny)\(\s*(CloseCode\.\w+|\d{4})\s*,\s*['"`]/;
    const offenders = sources('apps/server/src').filter((f) => literal.test(read(f)));
    expect(offenders).toEqual([]);
  });
});

describe('configuration tables in docs/ against the schemas', () => {
  // TURN_SECRET is required: it has no default to compare.
  const { TURN_SECRET: _required, ...turnDefaults } = parseEnv(turnEnvSchema, { TURN_SECRET: 'placeholder-secret-of-32-bytes-or-more' });
  const defaults = { ...turnDefaults, ...parseEnv(serverEnvSchema, {}) } as Record<string, unknown>;
  const known = new Set([...variablesOf(serverEnvSchema), ...variablesOf(turnEnvSchema)]);
  const docs = DOCS.filter((d) => d.startsWith('docs/'));

  it.each(docs)('%s: every `| variable | default |` row is a variable with that default', (doc) => {
    let inTable = false;
    for (const line of read(doc).split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (!line.startsWith('|')) inTable = false;
      else if (cells[1] === 'variable' && cells[2] === 'default') inTable = true;
      else if (inTable) {
        // `A` / `B` rows pair names with the defaults in the same order.
        const names = (cells[1] ?? '').split(' / ').map((c) => /^`([A-Z0-9_]+)`$/.exec(c)?.[1]);
        if (names.some((n) => n === undefined)) continue;
        const cellsOfDefault = (cells[2] ?? '').split(' / ');
        names.forEach((name, i) => {
          expect(known, `${doc}: ${name}`).toContain(name);
          const value = defaults[name as string];
          const cell = names.length > 1 ? cellsOfDefault[i] : cells[2];
          if (value !== undefined) expect(cell, `${doc}: ${name}`).toContain(`\`${Array.isArray(value) ? value.join(',') : String(value)}\``);
        });
      }
    }
  });

  it('deploy/.env.example states the schema default where its comments give one', () => {
    const lines = read('deploy/.env.example').split('\n');
    let comment = '';
    let checked = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.startsWith('#')) {
        comment = /^#\s*-{5,}/.test(line) ? '' : `${comment} ${line.slice(1).trim()}`;
        continue;
      }
      const names: string[] = [];
      for (; i < lines.length && /^[A-Z0-9_]+=/.test(lines[i] as string); i++) names.push((lines[i] as string).split('=')[0] as string);
      if (names.length > 0) i--; // the line that ended the run is read again by the loop
      // `(default X)`, up to `)`, `;` or `, ` (a comma and a space start a remark; lists have none).
      const stated = /\(default (.+?)(?:\)|;|, )/.exec(comment)?.[1]?.trim();
      comment = '';
      if (!stated || names.length === 0) continue;
      let values = stated.split(' / ');
      if (names.length === 2 && values.length === 1) values = stated.split('-');
      if (values.length !== names.length) continue;
      names.forEach((name, k) => {
        const value = defaults[name];
        if (value === undefined) return;
        checked++;
        expect(values[k], `.env.example ${name}`).toBe(Array.isArray(value) ? value.join(',') : String(value));
      });
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('README names every default TURN_DENY_PEERS group', () => {
    const row = read('README.md').split('\n').find((l) => l.startsWith('| `TURN_DENY_PEERS` |')) ?? '';
    for (const group of DEFAULT_DENY) expect(row).toContain(group);
  });
});

describe('documents', () => {
  it.each(DOCS)('%s cites no document outside the repository', (doc) => {
    expect(read(doc)).not.toMatch(/\bSPEC\b|RECIPES|\bissue #?\d+|the issue's/i);
  });
});

describe('comments', () => {
  // Documents outside the repository: the public contract, the machine notes, issue numbers.
  const outside = /\bSPEC\b|\bSPEC\.md|RECIPES|\bissue (?:#?\d+)/i;
  const comment = /\/\/.*|\/\*[\s\S]*?\*\//g;

  it('cite only files in this repository', () => {
    const files = ['apps', 'packages', 'test', 'bench', 'scripts', 'deploy', 'demo'].flatMap((d) => sources(d));
    const offenders: string[] = [];
    for (const file of files) {
      const text = read(file);
      for (const m of text.matchAll(comment)) {
        if (!outside.test(m[0])) continue;
        const line = text.slice(0, m.index).split('\n').length;
        offenders.push(`${relative('.', file)}:${line}: ${(outside.exec(m[0]) as RegExpExecArray)[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
