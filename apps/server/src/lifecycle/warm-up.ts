/**
 * WARM_UP_AT_START: before its port opens, the server makes one relay connection to itself.
 *
 * The first connection after a restart ran every function of its path for the first time: the
 * HTTP parser's upgrade, Fastify's router and hooks, the WebSocket handshake, the token check,
 * the relay's room open, storage read and sync answer, each compiled by V8 on that first call.
 * On the cold-load bench's 2.3 MB conversation that was about half of a fresh device's load
 * (docs/benchmarks.md, cold-load). So the server pays it before anyone connects: a loopback
 * listener of its own, open only meanwhile, hands its one socket to the same HTTP server, and a
 * WebSocket client joins a room of its own (a random id, a read-only token the server signs for it
 * with AUTH_SECRET, for a sub of its own: a room with nothing stored counts against its sub's
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR, which REDIS_URL shares between instances and restarts), asks for
 * the document with an empty sync step 1, reads the answer and closes. The room is empty, so this
 * compiles the relay's path for a room with nothing stored; a stored room's first load still
 * compiles its own reading of the stored bytes (persistence/stored-bytes.ts).
 * The room holds nothing: nothing is stored, no webhook fires; it leaves memory after ROOM_IDLE_MS
 * like any room. /sealed is not visited: a sealed room's first open stores its generation (a row
 * per start, kept for good); its connections still find the upgrade and the token check compiled.
 * A warm-up that fails or takes longer than WARM_UP_TIMEOUT_MS is given up (one warn line,
 * main.ts): the server starts all the same.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { createRoomToken, encodeRelayMessage, readRelayMessage, writeRelaySyncStep1 } from '@sync-suite/shared';
import type { ServerConfig } from '@sync-suite/shared/node';

/** How long the warm-up may take before the server starts without it. */
export const WARM_UP_TIMEOUT_MS = 2000;

/** The token's sub, followed by a random id: what the warm-up's connection shows in logs. */
export const WARM_UP_SUB = 'sync-suite-warm-up';

/** A sync step 1 with a state vector naming no client: the whole document, as a fresh device asks. */
const EMPTY_STEP1 = encodeRelayMessage((e) => writeRelaySyncStep1(e, Uint8Array.of(0)));

/** done, or why not: `failed` false when there was nothing to warm (no relay room type). */
export type WarmUpOutcome = { done: true; ms: number; room: string } | { done: false; failed: boolean; reason: string };

/** A room of its own on /relay: the first type that is not sealed (none: no relay warm-up). */
export function warmUpRoom(config: Pick<ServerConfig, 'ROOM_TYPES' | 'SEALED_ROOM_TYPES' | 'ROOM_PREFIX'>): string | null {
  const type = config.ROOM_TYPES.find((t) => !(config.SEALED_ROOM_TYPES ?? []).includes(t));
  if (type === undefined) return null;
  return `${config.ROOM_PREFIX ?? 'sync-suite'}-${type}-warm-up.${randomBytes(8).toString('hex')}`;
}

/** Runs the warm-up (the app must be ready: its routes are what is warmed). Never throws. */
export async function warmUp(app: FastifyInstance, config: ServerConfig, timeoutMs = WARM_UP_TIMEOUT_MS): Promise<WarmUpOutcome> {
  const room = warmUpRoom(config);
  if (room === null) return { done: false, failed: false, reason: 'every room type is sealed: no relay room to warm' };
  const started = performance.now();
  let listener: Server | null = null;
  let client: WebSocket | null = null;
  const timer = new AbortController();
  const deadline = setTimeout(() => timer.abort(), timeoutMs);
  try {
    await app.ready();
    const sub = `${WARM_UP_SUB}.${randomBytes(8).toString('hex')}`;
    const ttlSeconds = Math.min(60, config.TOKEN_MAX_TTL_SECONDS);
    const token = config.AUTH_SECRET ? await createRoomToken(config.AUTH_SECRET, { sub, rooms: [room], scope: 'read', ttlSeconds }) : undefined;
    // Loopback only, an ephemeral port, closed before the server's own port opens; it takes one
    // connection (it stops listening at the first) and hands it to the server.
    const server = createServer((socket) => {
      server.close();
      app.server.emit('connection', socket);
    });
    listener = server;
    const host = await listenOnLoopback(server, timer.signal);
    const { port } = server.address() as AddressInfo;
    const query = token ? `?token=${encodeURIComponent(token)}` : '';
    const ws = new WebSocket(`ws://${host}:${port}/relay/${room}${query}`, { perMessageDeflate: false });
    client = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('error', () => undefined); // the close that follows ends the wait
    const answered = new Promise<boolean>((resolve) => {
      ws.on('message', (data: Buffer) => {
        const read = readRelayMessage(data);
        if (read.ok && read.message.type === 'sync-step2') resolve(true);
      });
      ws.on('close', () => resolve(false));
    });
    await once(ws, 'open', { signal: timer.signal });
    ws.send(EMPTY_STEP1);
    const aborted = once(timer.signal, 'abort').then(() => false);
    if (!(await Promise.race([answered, aborted]))) throw new Error('closed before answering'); // or timed out (below)
    const closed = once(ws, 'close');
    ws.close(1000);
    await Promise.race([closed, aborted]);
    return { done: true, ms: Math.round(performance.now() - started), room };
  } catch (err) {
    return { done: false, failed: true, reason: timer.signal.aborted ? `timed out after ${timeoutMs} ms` : err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(deadline);
    if (client && client.readyState !== WebSocket.CLOSED) client.terminate();
    listener?.close();
  }
}

/** 127.0.0.1, or ::1 on a host without IPv4 loopback; returns the host as a URL writes it. */
async function listenOnLoopback(server: Server, signal: AbortSignal): Promise<string> {
  for (const [host, inUrl] of [['127.0.0.1', '127.0.0.1'], ['::1', '[::1]']] as const) {
    server.listen(0, host);
    try {
      await Promise.race([once(server, 'listening', { signal }), once(server, 'error', { signal }).then(([err]) => Promise.reject(err as Error))]);
      return inUrl;
    } catch (err) {
      if (signal.aborted || host === '::1') throw err;
    }
  }
  throw new Error('no loopback address');
}
