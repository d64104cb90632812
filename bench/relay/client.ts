/**
 * The relay bench's client: y-websocket sync frames over raw `ws` (with Hocuspocus's document
 * name prefix and auth message where the target needs them).
 */
import { once } from 'node:events';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import type { Target } from './targets.js';

export interface Client {
  ws: WebSocket;
  room: number;
  idx: number;
}

export const roomName = (roomIdx: number): string => `bench-conversation-${roomIdx}`;

export function frame(target: Target, room: string, body: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder();
  if (target.hocuspocus) encoding.writeVarString(e, room);
  body(e);
  return encoding.toUint8Array(e);
}

/** The update in a sync message (step 2 or update), or null. */
function updateIn(target: Target, data: Uint8Array): Uint8Array | null {
  const d = decoding.createDecoder(data);
  if (target.hocuspocus) decoding.readVarString(d);
  const type = decoding.readVarUint(d);
  if (type !== 0) return null;
  const syncType = decoding.readVarUint(d);
  if (syncType !== 2 && syncType !== 1) return null;
  return decoding.readVarUint8Array(d);
}

export async function connect(target: Target, port: number, roomIdx: number, idx: number, onUpdate: (c: Client, u: Uint8Array) => void): Promise<Client> {
  const room = roomName(roomIdx);
  const ws = new WebSocket(target.url(port, room));
  ws.binaryType = 'nodebuffer';
  const client: Client = { ws, room: roomIdx, idx };
  const firstMessage = once(ws, 'message');
  ws.on('message', (data: Buffer) => {
    const u = updateIn(target, new Uint8Array(data));
    if (u) onUpdate(client, u);
  });
  await once(ws, 'open');
  if (target.hocuspocus) {
    ws.send(frame(target, room, (e) => (encoding.writeVarUint(e, 2), encoding.writeVarUint(e, 0), encoding.writeVarString(e, 'bench'))));
  }
  // Every server opens with sync step 1 (hocuspocus: after auth); then the client is in the room.
  ws.send(frame(target, room, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 0), encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())))));
  await firstMessage;
  return client;
}
