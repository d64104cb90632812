/**
 * CI checks of docker-compose.yml without a Docker engine: for each profile, interpolate
 * with deploy/.env.example (secrets filled in), validate against the Compose
 * specification schema, and check what the schema cannot: required secrets, depends_on
 * targets, images/builds, mounted files, port clashes, and that each process's resolved
 * environment passes its own config schema.
 */
import { Ajv } from 'ajv';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { cleanEnv, serverConfigSchema, serverEnvSchema, turnConfigSchema, turnEnvSchema } from '@sync-suite/shared/node';
import {
  activeServices,
  dependencies,
  documentedVariables,
  environmentOf,
  interpolateString,
  interpolateTree,
  overlaps,
  parseEnvFile,
  publishedPorts,
  replicasOf,
  type ComposeFile,
  type ComposeService,
  type Env,
  type HostPort,
} from '../deploy/ci/compose-model.js';

const root = join(import.meta.dirname, '..');
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const envExampleText = readFileSync(join(root, 'deploy/.env.example'), 'utf8');
const exampleEnv = parseEnvFile(envExampleText);

const SECRETS: Env = {
  AUTH_SECRET: 'an-auth-secret-that-is-at-least-32-bytes-long',
  TURN_SECRET: 'a-turn-secret-for-tests-0123456789',
  METRICS_TOKEN: 'a-metrics-token',
  POSTGRES_PASSWORD: 'a-postgres-password',
  GRAFANA_ADMIN_PASSWORD: 'a-grafana-password',
  TURN_RELAY_IP: '203.0.113.10',
};

/** The settings docs/operations.md tells operators to use for each profile. */
const SCENARIOS: Record<string, Env> = {
  default: {},
  coturn: { COMPOSE_PROFILES: 'coturn', TURN_REPLICAS: '0' },
  scale: {
    COMPOSE_PROFILES: 'scale',
    STORAGE: 'postgres',
    DATABASE_URL: 'postgres://sync:a-postgres-password@postgres:5432/sync',
    REDIS_URL: 'redis://redis:6379',
    SERVER_REPLICAS: '3',
    SERVER_BIND: '127.0.0.1',
    SERVER_PORTS: '4444-4453',
    TRUST_PROXY: 'true',
    SYNC_DOMAIN: 'sync.example.com',
  },
  monitoring: { COMPOSE_PROFILES: 'monitoring' },
  everything: {
    COMPOSE_PROFILES: 'coturn,scale,monitoring',
    TURN_REPLICAS: '0',
    STORAGE: 'postgres',
    DATABASE_URL: 'postgres://sync:a-postgres-password@postgres:5432/sync',
    REDIS_URL: 'redis://redis:6379',
    SERVER_REPLICAS: '2',
    SERVER_BIND: '127.0.0.1',
    SERVER_PORTS: '4444-4453',
  },
};

function loadCompose(env: Env): { file: ComposeFile; errors: string[]; variables: Set<string> } {
  const r = interpolateTree(parse(composeText), env);
  return { file: r.value as ComposeFile, errors: r.errors, variables: r.variables };
}

function composeSchemaValidator() {
  const schema = JSON.parse(readFileSync(join(root, 'node_modules/dclint/schemas/compose.schema.json'), 'utf8'));
  delete schema.$schema;
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

function scenarioEnv(name: string): Env {
  return { ...exampleEnv, ...SECRETS, ...SCENARIOS[name] };
}

function profilesOf(env: Env): string[] {
  return (env['COMPOSE_PROFILES'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Ports a host-network TURN service binds, from its own environment. */
function hostNetworkPorts(service: ComposeService): HostPort[] {
  const env = cleanEnv(environmentOf(service)) as Env;
  const port = Number(env['TURN_PORT'] ?? 3478);
  const ports: HostPort[] = [
    { ip: '0.0.0.0', first: port, last: port, protocol: 'udp' },
    { ip: '0.0.0.0', first: port, last: port, protocol: 'tcp' },
    { ip: '0.0.0.0', first: Number(env['TURN_MIN_PORT'] ?? 49152), last: Number(env['TURN_MAX_PORT'] ?? 65535), protocol: 'udp' },
  ];
  if ('TURN_METRICS_PORT' in environmentOf(service)) {
    const m = Number(env['TURN_METRICS_PORT'] ?? 9641);
    ports.push({ ip: '0.0.0.0', first: m, last: m, protocol: 'tcp' });
  }
  return ports;
}

function checkPorts(file: ComposeFile, services: string[]): void {
  const taken: Array<{ service: string; port: HostPort }> = [];
  for (const name of services) {
    const service = file.services[name] as ComposeService;
    const replicas = replicasOf(service);
    if (replicas === 0) continue;
    const ports = service.network_mode === 'host' ? hostNetworkPorts(service) : publishedPorts(service);
    for (const port of ports) {
      // Each replica needs its own host port.
      expect(port.last - port.first + 1, `${name} publishes too few ports for ${replicas} replicas`).toBeGreaterThanOrEqual(replicas);
      const clash = taken.find((t) => overlaps(t.port, port));
      expect(clash, `${name} and ${clash?.service} both bind ${port.protocol} ${port.first}`).toBeUndefined();
      taken.push({ service: name, port });
    }
  }
}

function checkService(file: ComposeFile, name: string, active: string[]): void {
  const service = file.services[name] as ComposeService;
  expect(service.image ?? service.build, `${name} needs image or build`).toBeTruthy();
  for (const dep of dependencies(service)) {
    expect(Object.keys(file.services), `${name} depends on unknown ${dep.name}`).toContain(dep.name);
    if (dep.required) expect(active, `${name} needs ${dep.name}, not in these profiles`).toContain(dep.name);
  }
  if (service.build && typeof service.build === 'object') {
    const dockerfile = readFileSync(join(root, service.build.context, service.build.dockerfile ?? 'Dockerfile'), 'utf8');
    if (service.build.target) expect(dockerfile).toMatch(new RegExp(`^FROM .+ AS ${service.build.target}$`, 'm'));
  }
  for (const volume of service.volumes ?? []) {
    const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source;
    if (source?.startsWith('.')) expect(existsSync(join(root, source)), `${name} mounts missing ${source}`).toBe(true);
    else if (source) expect(Object.keys(file.volumes ?? {}), `${name} uses undeclared volume ${source}`).toContain(source);
  }
}

function checkProcessEnvironments(file: ComposeFile, active: string[]): void {
  for (const [service, schema, envSchema] of [
    ['server', serverConfigSchema, serverEnvSchema],
    ['turn', turnConfigSchema, turnEnvSchema],
  ] as const) {
    if (!active.includes(service)) continue;
    const env = environmentOf(file.services[service] as ComposeService);
    // Every variable the process reads is passed through, so .env settings reach it.
    expect(Object.keys(env).sort()).toEqual(expect.arrayContaining(Object.keys(envSchema.shape)));
    const parsed = schema.safeParse(cleanEnv(env));
    expect(parsed.success, `${service} env: ${JSON.stringify(parsed.error?.issues[0])}`).toBe(true);
  }
  const server = file.services['server'] as ComposeService;
  if (replicasOf(server) > 1) {
    const env = environmentOf(server);
    expect(env['STORAGE'], 'several servers need shared storage').toBe('postgres');
    expect(env['REDIS_URL'], 'several servers need Redis fan-out').toBeTruthy();
  }
}

describe('docker-compose.yml', () => {
  const validate = composeSchemaValidator();

  it('stops with a message naming each missing secret when .env.example is used unfilled', () => {
    const { errors } = loadCompose(exampleEnv);
    const missing = [...new Set(errors.map((e) => e.split(':')[0]))].sort();
    expect(missing).toEqual(['AUTH_SECRET', 'TURN_RELAY_IP', 'TURN_SECRET']);
    expect(errors.every((e) => /is required/.test(e))).toBe(true);
  });

  it('interpolation follows the Compose rules', () => {
    const env = { A: 'a', EMPTY: '' };
    expect(interpolateString('${A}-${EMPTY:-d}-${EMPTY-d}-${MISSING-x}-$$A-${A:+yes}', env).value).toBe('a-d--x-$A-yes');
    expect(interpolateString('${MISSING:?say why}', env).errors).toEqual(['MISSING: say why']);
    expect(interpolateString('${MISSING:-${A}}', env).value).toBe('a');
  });

  for (const name of Object.keys(SCENARIOS)) {
    it(`profile "${name}": valid, resolved and consistent`, () => {
      const env = scenarioEnv(name);
      const { file, errors } = loadCompose(env);
      expect(errors).toEqual([]);
      const valid = validate(file);
      expect(valid, JSON.stringify(validate.errors?.slice(0, 3))).toBe(true);
      const active = activeServices(file, profilesOf(env));
      expect(active).toEqual(expect.arrayContaining(['server', 'turn']));
      for (const service of active) checkService(file, service, active);
      checkPorts(file, active);
      checkProcessEnvironments(file, active);
    });
  }

  it('each profile brings the services the issue asks for', () => {
    const servicesFor = (name: string) => activeServices(loadCompose(scenarioEnv(name)).file, profilesOf(scenarioEnv(name)));
    expect(servicesFor('default').sort()).toEqual(['server', 'turn']);
    expect(servicesFor('coturn')).toContain('coturn');
    expect(servicesFor('scale')).toEqual(expect.arrayContaining(['postgres', 'redis', 'proxy']));
    expect(servicesFor('monitoring')).toEqual(expect.arrayContaining(['prometheus', 'grafana']));
    const scaled = loadCompose(scenarioEnv('scale')).file.services['server'] as ComposeService;
    expect(replicasOf(scaled)).toBe(3);
  });

  it('documents every variable it reads in deploy/.env.example, and every process variable', () => {
    const documented = documentedVariables(envExampleText);
    const { variables } = loadCompose(scenarioEnv('default'));
    for (const v of variables) expect(documented, `${v} not in .env.example`).toContain(v);
    for (const v of [...Object.keys(serverEnvSchema.shape), ...Object.keys(turnEnvSchema.shape)]) {
      expect(documented, `${v} not in .env.example`).toContain(v);
    }
  });

  it('passes dclint (style rules of the Compose linter)', async () => {
    const { stdout } = await promisify(execFile)(join(root, 'node_modules/.bin/dclint'), ['-q', 'docker-compose.yml'], { cwd: root, timeout: 30_000 });
    expect(stdout.trim()).toBe('');
  });

  it('bakes in no secret: secrets come only from ${...} references', () => {
    const raw = parse(composeText) as ComposeFile;
    for (const service of Object.values(raw.services)) {
      const env = environmentOf(service);
      for (const key of ['AUTH_SECRET', 'AUTH_SECRET_PREVIOUS', 'TURN_SECRET', 'TURN_SECRET_PREVIOUS', 'METRICS_TOKEN', 'POSTGRES_PASSWORD']) {
        if (key in env) expect(env[key], `${key} literal`).toMatch(/^\$\{[A-Z_]+:[-?]/);
      }
    }
    for (const key of Object.keys(SECRETS).filter((k) => k !== 'TURN_RELAY_IP')) expect(exampleEnv[key]).toBe('');
  });
});
