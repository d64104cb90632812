/**
 * CI checks of the deployment files that cannot run here: the Dockerfile's shape, the
 * Prometheus config and alert rules, the Grafana provisioning and dashboard. Queries may
 * only name metrics that the code defines.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createServerMetrics, createTurnMetrics } from '@sync-suite/shared/node';
import { baseMetricName, metricNames } from '../deploy/ci/promql.js';
import { SERVER_ENV, SERVER_NODE_FLAGS, TURN_NODE_FLAGS } from '../deploy/launch.js';

const root = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

async function definedMetrics(): Promise<{ names: Set<string>; histograms: Set<string> }> {
  const names = new Set<string>(['up']);
  const histograms = new Set<string>();
  for (const { registry } of [createServerMetrics(), createTurnMetrics()]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') histograms.add(m.name);
    }
  }
  return { names, histograms };
}

async function expectKnownMetrics(exprs: string[]): Promise<Set<string>> {
  const { names, histograms } = await definedMetrics();
  const used = new Set<string>();
  for (const expr of exprs) {
    const found = metricNames(expr).map((n) => baseMetricName(n, histograms));
    expect(found.length, `no metric in ${expr}`).toBeGreaterThan(0);
    for (const name of found) {
      expect(names, `${name} (in ${expr}) is not defined by the code`).toContain(name);
      used.add(name);
    }
  }
  return used;
}

interface Stage {
  name: string;
  from: string;
  lines: string[];
}

function dockerStages(text: string): Stage[] {
  const joined = text.replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of joined.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ from: from[1] as string, name: from[2] ?? '', lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

/** A stage's instructions including those of the stages it builds on. */
function inherited(stages: Stage[], name: string): string[] {
  const stage = stages.find((s) => s.name === name);
  if (!stage) return [];
  return [...inherited(stages, stage.from), ...stage.lines];
}

describe('deploy/Dockerfile', () => {
  const text = read('deploy/Dockerfile');
  const stages = dockerStages(text);

  it('is multi-stage, with server and turn targets on a slim runtime', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(stages.map((s) => s.name)).toEqual(expect.arrayContaining(['build', 'runtime', 'server', 'turn']));
    expect(stages.find((s) => s.name === 'runtime')?.from).toMatch(/slim|alpine|distroless/);
    // The runtime takes only the bundle from the build stage, not the workspace's node_modules.
    const copies = inherited(stages, 'server').filter((l) => l.startsWith('COPY'));
    expect(copies).toEqual([expect.stringMatching(/^COPY --from=build .*\/out\/ \/app\/$/)]);
  });

  for (const target of ['server', 'turn']) {
    it(`${target}: non-root user, HEALTHCHECK, CMD running the bundle`, () => {
      const lines = inherited(stages, target);
      const user = lines.filter((l) => l.startsWith('USER')).at(-1);
      expect(user).toBeDefined();
      expect(user).not.toMatch(/\b(root|0)(:|$)/);
      expect(lines.some((l) => /^HEALTHCHECK .*CMD .*healthcheck\.mjs/.test(l))).toBe(true);
      expect(lines.filter((l) => l.startsWith('CMD')).at(-1)).toContain(`/app/${target}.mjs`);
    });
  }

  it('server: started as deploy/launch.ts says, the way the benches start the bundle', () => {
    const lines = inherited(stages, 'server');
    expect(JSON.parse(lines.filter((l) => l.startsWith('CMD')).at(-1)?.slice(3) ?? 'null')).toEqual(['node', ...SERVER_NODE_FLAGS, '/app/server.mjs']);
    const env = lines.filter((l) => l.startsWith('ENV')).join(' ');
    for (const [name, value] of Object.entries(SERVER_ENV)) expect(env).toMatch(new RegExp(`(^|\\s)${name}=${value}(\\s|$)`));
    // node flags come from CMD only: NODE_OPTIONS would add some the benches do not run with
    expect(env).not.toMatch(/NODE_OPTIONS/);
  });

  it('turn: started as deploy/launch.ts says, the way bench/turn.ts starts the bundle', () => {
    const lines = inherited(stages, 'turn');
    expect(JSON.parse(lines.filter((l) => l.startsWith('CMD')).at(-1)?.slice(3) ?? 'null')).toEqual(['node', ...TURN_NODE_FLAGS, '/app/turn.mjs']);
    expect(lines.filter((l) => l.startsWith('ENV')).join(' ')).not.toMatch(/NODE_OPTIONS/);
  });

  it('copies only files that exist and bakes in no secret', () => {
    for (const line of stages.flatMap((s) => s.lines).filter((l) => l.startsWith('COPY') && !l.includes('--from'))) {
      const sources = line.split(/\s+/).slice(1, -1).filter((p) => !p.startsWith('--'));
      for (const source of sources) expect(existsSync(join(root, source)), source).toBe(true);
    }
    expect(text).not.toMatch(/^\s*(ENV|ARG)\s+[^\n]*(SECRET|TOKEN|PASSWORD)/im);
    expect(read('.dockerignore')).toMatch(/^\.env$/m);
  });
});

describe('Prometheus', () => {
  const config = parse(read('deploy/prometheus/prometheus.yml')) as {
    scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }>; static_configs?: Array<{ targets: string[] }>; authorization?: { credentials_file?: string } }>;
    rule_files: string[];
  };

  it('scrapes every server replica (with the metrics token) and the TURN server', () => {
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(jobs['sync-server']?.dns_sd_configs?.[0]).toMatchObject({ names: ['server'], port: 4444 });
    expect(jobs['sync-server']?.authorization?.credentials_file).toBe('/prometheus/metrics_token');
    expect(read('docker-compose.yml')).toContain('> /prometheus/metrics_token');
    expect(jobs['sync-turn']?.static_configs?.[0]?.targets).toEqual(['host.docker.internal:9641']);
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
  });

  it('alert rules parse and query only defined metrics', async () => {
    const rules = parse(read('deploy/prometheus/alerts.yml')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(exprs.length).toBeGreaterThan(3);
    await expectKnownMetrics(exprs);
  });
});

describe('Grafana', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/sync-suite.json')) as {
    uid: string;
    panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ expr: string }> }>;
  };

  it('provisions the Prometheus datasource and the dashboard folder that compose mounts', () => {
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ uid: string; url: string }> };
    expect(ds.datasources[0]).toMatchObject({ uid: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parse(read('deploy/grafana/provisioning/dashboards/sync-suite.yml')) as { providers: Array<{ options: { path: string } }> };
    const path = providers.providers[0]?.options.path as string;
    expect(read('docker-compose.yml')).toContain(`./deploy/grafana/dashboards:${path}:ro`);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.datasource?.uid).toBe('prometheus');
  });

  it('charts connections, rooms, update rates, persist latency, auth failures, TURN allocations and bytes', async () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const used = await expectKnownMetrics(exprs);
    for (const name of [
      'sync_signaling_connections',
      'sync_relay_connections',
      'sync_relay_rooms',
      'sync_signaling_topics',
      'sync_relay_updates_total',
      'sync_relay_persist_seconds',
      'sync_auth_failures_total',
      'turn_allocations',
      'turn_relayed_bytes_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('the metric-name extractor sees through PromQL syntax', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(sync_relay_persist_seconds_bucket{job="x"}[5m])))')).toEqual([
      'sync_relay_persist_seconds_bucket',
    ]);
    expect(metricNames('sum(up{job="sync-server"}) + sum(turn_allocations) * 60')).toEqual(['up', 'turn_allocations']);
  });
});

describe('Caddy', () => {
  it('proxies to every server replica and keeps /metrics private', () => {
    const caddyfile = read('deploy/caddy/Caddyfile');
    expect(caddyfile).toMatch(/dynamic a \{\s*name server\s*port 4444/);
    expect(caddyfile).toMatch(/@metrics path \/metrics\s*respond @metrics 404/);
    expect(caddyfile).toContain('{$SYNC_DOMAIN:localhost}');
  });
});
