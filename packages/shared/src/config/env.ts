/**
 * Turning environment variables into validated config: one zod schema per process,
 * and a loader that reports the first bad variable in one line.
 */
import { z } from 'zod';

export type Env = Record<string, string | undefined>;

/** Empty strings count as unset, as operators expect from `FOO=` in an env file. */
export function cleanEnv(env: Env): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

// Plain decimal digits only: `z.coerce.number()` would take ' ' as 0, '0x10' as 16 and '1e3' as 1000.
const wholeNumber = z.string().trim().regex(/^-?\d+$/, 'must be a whole number').transform(Number);
export const port = wholeNumber.pipe(z.number().min(0).max(65535));
export const positiveInt = wholeNumber.pipe(z.number().positive());
export const nonNegativeInt = wholeNumber.pipe(z.number().min(0));
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
export const csv = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s.length > 0));
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
/**
 * An HMAC secret (AUTH_SECRET, TURN_SECRET and their _PREVIOUS): anyone holding one signed value
 * (a room token, a TURN username and password) can test guesses offline, so 32 bytes at least.
 */
export const secret = z.string().refine((s) => Buffer.byteLength(s, 'utf8') >= 32, 'must be at least 32 bytes');

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Parse with the schema; throw a ConfigError naming the first bad variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): z.output<S> {
  // jitless: zod would otherwise generate and compile a parser for each object schema, for a
  // parse done once per process; that code generation made V8's optimizing compiler run at start
  // and page in about 3.5 MB of it (docs/benchmarks.md, memory).
  const result = schema.safeParse(cleanEnv(env), { jitless: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const variable = issue?.path.length ? String(issue.path[0]) : 'environment';
  throw new ConfigError(variable, (issue?.message ?? 'invalid').replace(/\s+/g, ' '));
}

/** For main(): print one line and exit 1 on a bad value. */
export function loadEnvOrExit<S extends z.ZodType>(schema: S, env: Env = process.env): z.output<S> {
  try {
    return parseEnv(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** Variable names of a schema, for the README check. */
export function variablesOf(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape);
}
