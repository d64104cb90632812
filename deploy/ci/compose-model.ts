/**
 * What `docker compose config` does, for CI on a machine without Docker: read an env
 * file, interpolate `${VAR...}` as the Compose specification says, and pick the services
 * of a set of profiles. Pure functions; test/deploy-compose.test.ts applies the checks.
 */

export type Env = Record<string, string>;

export interface Interpolated<T> {
  value: T;
  /** messages of `${VAR:?message}` / `${VAR?message}` whose variable is missing */
  errors: string[];
  /** every variable name referenced */
  variables: Set<string>;
}

/** `KEY=value` lines; comments and blank lines ignored; optional quotes removed. */
export function parseEnvFile(text: string): Env {
  const env: Env = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not KEY=value: ${line}`);
    const value = line.slice(eq + 1).trim();
    env[line.slice(0, eq).trim()] = value.replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/** Names documented in an env file, set or commented out (`# KEY=...`). */
export function documentedVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)) names.add(m[1] as string);
  return names;
}

const BRACED = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}/;
const BARE = /^\$([A-Za-z_][A-Za-z0-9_]*)/;

/** Interpolate one string value. */
export function interpolateString(input: string, env: Env): Interpolated<string> {
  const errors: string[] = [];
  const variables = new Set<string>();
  let out = '';
  let i = 0;
  while (i < input.length) {
    if (input[i] !== '$') {
      out += input[i];
      i += 1;
      continue;
    }
    const rest = input.slice(i);
    if (rest.startsWith('$$')) {
      out += '$';
      i += 2;
      continue;
    }
    const braced = BRACED.exec(rest);
    const bare = braced ? null : BARE.exec(rest);
    const match = braced ?? bare;
    if (!match) throw new Error(`invalid interpolation at "${rest.slice(0, 30)}"`);
    const name = match[1] as string;
    variables.add(name);
    const resolved = resolve(name, braced?.[2], braced?.[3] ?? '', env);
    if (resolved.error !== undefined) errors.push(resolved.error);
    const inner = interpolateString(resolved.value, env);
    inner.variables.forEach((v) => variables.add(v));
    errors.push(...inner.errors);
    out += inner.value;
    i += match[0].length;
  }
  return { value: out, errors, variables };
}

function resolve(name: string, op: string | undefined, arg: string, env: Env): { value: string; error?: string } {
  const value = env[name];
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case undefined:
      return { value: value ?? '' };
    case ':-':
      return { value: nonEmpty ? (value as string) : arg };
    case '-':
      return { value: set ? (value as string) : arg };
    case ':?':
      return nonEmpty ? { value: value as string } : { value: '', error: `${name}: ${arg || 'required'}` };
    case '?':
      return set ? { value: value as string } : { value: '', error: `${name}: ${arg || 'required'}` };
    case ':+':
      return { value: nonEmpty ? arg : '' };
    case '+':
      return { value: set ? arg : '' };
    default:
      throw new Error(`unknown operator ${op}`);
  }
}

/** Interpolate every string value (not keys) of a parsed YAML tree. */
export function interpolateTree(node: unknown, env: Env): Interpolated<unknown> {
  const errors: string[] = [];
  const variables = new Set<string>();
  const walk = (n: unknown): unknown => {
    if (typeof n === 'string') {
      const r = interpolateString(n, env);
      errors.push(...r.errors);
      r.variables.forEach((v) => variables.add(v));
      return r.value;
    }
    if (Array.isArray(n)) return n.map(walk);
    if (n && typeof n === 'object') return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, walk(v)]));
    return n;
  };
  return { value: walk(node), errors, variables };
}

export interface ComposeService {
  profiles?: string[];
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string } | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition: string; required?: boolean }>;
  network_mode?: string;
  ports?: Array<string | number | { target: number | string; published?: string | number; host_ip?: string; protocol?: string }>;
  volumes?: Array<string | { type: string; source?: string; target: string }>;
  deploy?: { replicas?: number | string };
  [key: string]: unknown;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Services enabled by a set of profiles: those without profiles, and those listing one. */
export function activeServices(file: ComposeFile, profiles: readonly string[]): string[] {
  return Object.entries(file.services)
    .filter(([, s]) => !s.profiles || s.profiles.some((p) => profiles.includes(p)))
    .map(([name]) => name);
}

export function dependencies(service: ComposeService): Array<{ name: string; required: boolean }> {
  const deps = service.depends_on;
  if (!deps) return [];
  if (Array.isArray(deps)) return deps.map((name) => ({ name, required: true }));
  return Object.entries(deps).map(([name, d]) => ({ name, required: d.required !== false }));
}

export function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((kv) => [kv.split('=')[0] as string, kv.slice(kv.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

export function replicasOf(service: ComposeService): number {
  const r = service.deploy?.replicas;
  return r === undefined ? 1 : Number(r);
}

export interface HostPort {
  ip: string;
  first: number;
  last: number;
  protocol: string;
}

/** Host ports a service publishes (short and long syntax; ranges kept as ranges). */
export function publishedPorts(service: ComposeService): HostPort[] {
  return (service.ports ?? []).flatMap((p): HostPort[] => {
    if (typeof p === 'object') {
      if (p.published === undefined) return [];
      return [range(p.host_ip ?? '0.0.0.0', String(p.published), p.protocol ?? 'tcp')];
    }
    const [spec, protocol = 'tcp'] = String(p).split('/');
    const parts = (spec as string).split(':');
    if (parts.length < 2) return [];
    const ip = parts.length === 3 ? (parts[0] as string) : '0.0.0.0';
    return [range(ip, parts[parts.length - 2] as string, protocol)];
  });
}

function range(ip: string, published: string, protocol: string): HostPort {
  const [a, b] = published.split('-').map(Number) as [number, number | undefined];
  return { ip, first: a, last: b ?? a, protocol };
}

export function overlaps(a: HostPort, b: HostPort): boolean {
  const ipClash = a.ip === b.ip || a.ip === '0.0.0.0' || b.ip === '0.0.0.0';
  return ipClash && a.protocol === b.protocol && a.first <= b.last && b.first <= a.last;
}
