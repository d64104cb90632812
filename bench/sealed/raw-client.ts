/** The sealed bench's client: WS /sealed frames over raw `ws` (no provider, no Yjs on the hot path). */
import { once } from 'node:events';
import WebSocket from 'ws';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedSnapshot, writeSealedUpdate, type SealedServerMessage } from '@sync-suite/shared';

export class BenchSealedClient {
  readonly ws: WebSocket;
  private nextId = 1;
  private caughtUp: Promise<number>;

  constructor(url: string, onMessage: (m: SealedServerMessage) => void) {
    this.ws = new WebSocket(url);
    let resolve: (seq: number) => void = () => undefined;
    this.caughtUp = new Promise((r) => (resolve = r));
    this.ws.on('message', (data: Buffer) => {
      const r = readSealedServerMessage(new Uint8Array(data));
      if (!r.ok) return;
      if (r.message.type === 'caught-up') resolve(r.message.seq);
      onMessage(r.message);
    });
  }

  /** Opens, says hello from `cursor`, and resolves with the caught-up seq. */
  async join(cursor = 0): Promise<number> {
    await once(this.ws, 'open');
    this.ws.send(encodeSealedMessage((e) => writeSealedHello(e, cursor)));
    return this.caughtUp;
  }

  update(envelope: Uint8Array): number {
    const id = this.nextId++;
    this.ws.send(encodeSealedMessage((e) => writeSealedUpdate(e, id, envelope)));
    return id;
  }

  snapshot(covers: number, envelope: Uint8Array): void {
    this.ws.send(encodeSealedMessage((e) => writeSealedSnapshot(e, covers, envelope)));
  }

  close(): void {
    this.ws.terminate();
  }
}
