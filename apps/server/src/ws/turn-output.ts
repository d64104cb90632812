/**
 * Output written once per event-loop turn, for /relay and /sealed connections. TurnFlush runs
 * each registered sink's flush at the end of the current turn: one setImmediate for all of them,
 * which fires after the poll phase, so after every socket read of this turn. TurnOutput is such a
 * sink for one WebSocket: the frames of a turn are framed (relay/ws-frames.ts) and written to the
 * TCP socket under the WebSocket in one write, instead of one ws.send() per message.
 */
import type { WebSocket } from 'ws';
import { encodeBinaryFrames } from '../relay/ws-frames.js';

export interface TurnSink {
  flushTurn(): void;
}

export class TurnFlush {
  private due: TurnSink[] = [];
  private readonly run = (): void => {
    const due = this.due;
    this.due = [];
    for (const sink of due) sink.flushTurn();
  };

  /** Call once per sink per turn (when its first output of the turn is queued). */
  schedule(sink: TurnSink): void {
    if (this.due.length === 0) setImmediate(this.run);
    this.due.push(sink);
  }
}

interface RawSocket {
  write(chunk: Uint8Array): boolean;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

export class TurnOutput implements TurnSink {
  private out: Uint8Array[] = [];
  /** bytes queued for the end of this turn */
  bytes = 0;
  /** ws keeps the TCP socket in `_socket` */
  private readonly raw: RawSocket | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly turns: TurnFlush,
  ) {
    this.raw = (ws as unknown as { _socket?: RawSocket })._socket;
  }

  push(frame: Uint8Array): void {
    if (!this.raw) return this.ws.send(frame);
    if (this.out.length === 0) this.turns.schedule(this);
    this.out.push(frame);
    this.bytes += frame.length;
  }

  flushTurn(): void {
    const messages = this.out;
    if (messages.length === 0) return;
    this.out = [];
    this.bytes = 0;
    const raw = this.raw;
    if (!raw || raw.destroyed || this.ws.readyState !== this.ws.OPEN) return;
    const chunks = encodeBinaryFrames(messages);
    if (chunks.length === 1) return void raw.write(chunks[0] as Uint8Array);
    raw.cork();
    for (const chunk of chunks) raw.write(chunk);
    raw.uncork();
  }

  clear(): void {
    this.out = [];
    this.bytes = 0;
  }
}
