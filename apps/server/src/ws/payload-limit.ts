/**
 * Per-endpoint frame size limit enforced by ws itself, before a payload is buffered: ws checks
 * its receiver's maxPayload when it reads a frame's length header and closes 1009 right away.
 * The WebSocket server has one maxPayload for every path (the largest endpoint limit, see
 * app.ts), and ws has no public per-socket setting, so each endpoint lowers its sockets' limit
 * as soon as they open. That happens synchronously in the route handler, before ws has parsed
 * any frame (it parses socket data on a later tick), so no frame escapes the lower limit.
 * A test (apps/server/test/edge-upgrades.test.ts) pins this against ws upgrades.
 */
import type { WebSocket } from 'ws';
import { setFramePayloadLimit } from './ws-internals.js';

export function limitFramePayload(ws: WebSocket, maxBytes: number): void {
  setFramePayloadLimit(ws, maxBytes);
}
