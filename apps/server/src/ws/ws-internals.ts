/**
 * Every read or write of a private field of ws's WebSocket or of node's net.Socket, in one place.
 * Checked against ws 8.23.0 (apps/server/package.json, package-lock.json; @fastify/websocket's
 * own copy is the same version) and node 20.19 (package.json engines). Each accessor is guarded:
 * a field that is absent reads as undefined and a write to it does nothing, so a ws or node
 * upgrade that renames one loses the saving, not the server. apps/server/test/ws-internals.test.ts
 * checks each one against the installed ws on a real server and client, and fails when a field
 * is renamed or the version above no longer matches the pin.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

interface WsPrivate {
  /** the TCP socket, set by ws's setSocket before the WebSocket is handed out (lib/websocket.js) */
  _socket?: Socket | null;
  /** the frame parser (lib/receiver.js) */
  _receiver?: { _buffers?: unknown; _maxPayload?: unknown } | null;
}

interface SocketPrivate {
  /** the ServerResponse assigned to the socket (node's lib/_http_server.js; @fastify/websocket assigns one) */
  _httpMessage?: unknown;
  /** the peer address node caches on the first remoteAddress read (lib/net.js) */
  _peername?: unknown;
}

/** The TCP socket under a WebSocket. */
export function tcpSocket(ws: WebSocket): Socket | undefined {
  return (ws as unknown as WsPrivate)._socket ?? undefined;
}

/** ws's queue of received chunks not yet parsed: an array, emptied (not shrunk) by shift(). */
export function readQueue(ws: WebSocket): unknown[] | undefined {
  const queue = (ws as unknown as WsPrivate)._receiver?._buffers;
  return Array.isArray(queue) ? queue : undefined;
}

/** The frame payload limit ws's receiver checks on each frame header, or undefined. */
export function framePayloadLimit(ws: WebSocket): number | undefined {
  const limit = (ws as unknown as WsPrivate)._receiver?._maxPayload;
  return typeof limit === 'number' ? limit : undefined;
}

/**
 * Sets that limit for this one socket; no-op if absent. ws enforces it itself, before a payload is
 * buffered: it checks maxPayload when it reads a frame's length header and closes 1009 at once.
 * The WebSocket server has one maxPayload for every path (the largest endpoint limit, app.ts) and
 * no public per-socket setting, so each endpoint lowers its sockets' limit as they open. That
 * happens synchronously in the route handler, before ws has parsed any frame (it parses socket
 * data on a later tick), so no frame escapes the lower limit (apps/server/test/edge-upgrades.test.ts).
 */
export function setFramePayloadLimit(ws: WebSocket, maxBytes: number): void {
  const receiver = (ws as unknown as WsPrivate)._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = maxBytes;
}

/** The HTTP response node holds for the socket (its `_httpMessage`), or undefined. */
export function httpMessageOf(raw: Socket): unknown {
  return (raw as Socket & SocketPrivate)._httpMessage;
}

/** The symbol node keeps the socket's idle timer under (net.Socket's kTimeout), or undefined. */
export function timeoutSymbol(raw: Socket): symbol | undefined {
  return Object.getOwnPropertySymbols(raw).find((s) => s.description === 'timeout');
}

/**
 * Drops the idle timer node keeps on a socket whose timeout is off (setTimeout(0) clears the timer
 * but keeps it, with its bound callback); a socket without one is the same to node.
 */
export function dropClearedTimer(raw: Socket): void {
  const key = timeoutSymbol(raw);
  if (key && raw.timeout === 0) (raw as unknown as Record<symbol, unknown>)[key] = null;
}

/** The peer address node cached on the socket, or undefined if none is cached. */
export function cachedPeerAddress(raw: Socket): unknown {
  return (raw as Socket & SocketPrivate)._peername;
}

/** Forgets that cached address: node reads it again if remoteAddress is asked for. */
export function dropCachedPeerAddress(raw: Socket): void {
  const peer = raw as Socket & SocketPrivate;
  if (peer._peername !== undefined) peer._peername = undefined;
}
