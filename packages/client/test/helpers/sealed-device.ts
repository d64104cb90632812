/**
 * A SealedTransport device against an in-process server (test/helpers/server.ts), recording the
 * close codes it was refused with and the progress it reported, destroyed by the test file's cleanup.
 */
import { createRequire } from 'node:module';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { testToken } from '../../../../test/helpers/server.js';
import { SealedTransport } from '../../src/sealed/transport.js';
import type { SealedProgress } from '../../src/sealed/progress.js';

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket;

export interface SealedDevice {
  t: SealedTransport;
  doc: Y.Doc;
  refused: number[];
  progress: SealedProgress[];
}

export type SealedDeviceFactory = (server: { wsUrl: string }, room: string, resume?: SealedProgress, doc?: Y.Doc) => SealedDevice;

/** Devices holding `key`, each its own sub (`dev-1`, `dev-2`, …) with a token for `test-*`; each destroy goes on `cleanup`. */
export function sealedDevices(key: Uint8Array, cleanup: Array<() => unknown>): SealedDeviceFactory {
  let devices = 0;
  return (server, room, resume, doc = new Y.Doc()) => {
    const refused: number[] = [];
    const progress: SealedProgress[] = [];
    const sub = `dev-${++devices}`;
    const t = new SealedTransport({
      sealedBase: `${server.wsUrl}/sealed`,
      room,
      doc,
      awareness: new Awareness(doc),
      key,
      WebSocket,
      getToken: () => testToken(sub, ['test-*']),
      onChange: () => undefined,
      onTokenError: () => undefined,
      onRefused: (c) => refused.push(c.code),
      onSealedError: () => undefined,
      onProgress: (p) => progress.push(p),
      mergeMs: 5,
      ...(resume ? { resume } : {}),
    });
    cleanup.push(() => t.destroy());
    t.connect();
    return { t, doc, refused, progress };
  };
}
