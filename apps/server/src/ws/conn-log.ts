/**
 * A connection's logger, made the first time the connection logs at an enabled level: a pino
 * child per connection (its bindings string and level functions) would be held for the socket's
 * whole life, and an idle connection never logs (bench/memory.ts). Every line still carries the
 * connection's bindings: its id, and its room once known.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';

type Level = 'debug' | 'info' | 'warn' | 'error';

/** pino's standard level numbers; an unknown level name (e.g. 'silent') logs nothing. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export class ConnLog {
  private child: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Record<string, string>,
  ) {}

  /** Adds a binding to every later line. */
  bind(key: string, value: string): void {
    this.bindings[key] = value;
    this.child = null;
  }

  debug(obj: object | string, msg?: string): void {
    this.write('debug', obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    this.write('info', obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    this.write('warn', obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    this.write('error', obj, msg);
  }

  private write(level: Level, obj: object | string, msg: string | undefined): void {
    if (!levelEnabled(this.parent, level)) return;
    const log = (this.child ??= this.parent.child(this.bindings));
    if (typeof obj === 'string') log[level](obj);
    else log[level](obj, msg);
  }
}

/**
 * A connection id: a UUID as one flat string. randomUUID builds it by concatenation, a tree of
 * about twenty pieces (some 400 bytes) that a connection would keep for its whole life.
 */
/** Whether a line at this level would be written: lets a caller skip making a ConnLog at all. */
export function levelEnabled(parent: FastifyBaseLogger, level: Level): boolean {
  return (LEVELS[level] as number) >= (LEVELS[parent.level] ?? Infinity);
}

export function connId(): string {
  return ownString(randomUUID());
}

/**
 * A copy of a string kept for a connection's life that holds nothing else: a substring (a room
 * name taken from the request URL) may keep its whole parent alive, token included.
 */
export function ownString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
