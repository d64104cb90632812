/**
 * Output written once per event-loop turn, for /relay, /sealed and /signal connections. TurnFlush runs
 * each registered sink's flush at the end of the current turn: one setImmediate for all of them,
 * which fires after the poll phase, so after every socket read of this turn. TurnOutput is such a
 * sink for one WebSocket: the frames of a turn are framed (relay/ws-frames.ts) and written to the
 * TCP socket under the WebSocket in one write, instead of one ws.send() per message (/signal
 * keeps its own prebuilt text frames per turn: signaling/connection.ts).
 * TurnFlush also frames each message once per turn: a room sends the same bytes object to all its
 * connections, and each receiver that has only that message this turn writes the same frame.
 */
import type { WebSocket } from 'ws';
import { COPY_LIMIT, encodeBinaryFrames, frameOnce } from '../relay/ws-frames.js';

export interface TurnSink {
  flushTurn(): void;
}

export class TurnFlush {
  private due: TurnSink[] = [];
  /** this turn's framed messages, by the message object (cleared when the turn's flush ends) */
  private readonly frames = new Map<Uint8Array, Uint8Array>();
  private flushing = false;
  private readonly run = (): void => {
    const due = this.due;
    this.due = [];
    this.flushing = true;
    try {
      for (const sink of due) sink.flushTurn();
    } finally {
      this.flushing = false;
      this.frames.clear();
    }
  };

  /** `message` as one binary WebSocket frame, built once per turn however many receivers write it. */
  framed(message: Uint8Array): Uint8Array {
    if (!this.flushing) return frameOnce(message); // a flush outside the turn's (a close): nothing to share
    let frame = this.frames.get(message);
    if (!frame) this.frames.set(message, (frame = frameOnce(message)));
    return frame;
  }

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
  /** this turn's messages; null between turns (an idle connection holds no array) */
  private out: Uint8Array[] | null = null;
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
    if (this.out) this.out.push(frame);
    else {
      this.out = [frame];
      this.turns.schedule(this);
    }
    this.bytes += frame.length;
  }

  /**
   * Writes the turn's messages as WebSocket frames in one write. Frames go straight to the TCP
   * socket: ws sends nothing of its own but control frames, which may come between messages, and
   * once it has sent (or answered) a close frame the socket is no longer OPEN and nothing is written.
   */
  flushTurn(): void {
    const messages = this.out;
    if (!messages) return;
    this.out = null;
    this.bytes = 0;
    const raw = this.raw;
    if (!raw || raw.destroyed || this.ws.readyState !== this.ws.OPEN) return;
    // The usual turn: one message, also sent to the room's other connections: one shared frame.
    const only = messages.length === 1 ? (messages[0] as Uint8Array) : null;
    if (only && only.length <= COPY_LIMIT) return void raw.write(this.turns.framed(only));
    const chunks = encodeBinaryFrames(messages);
    if (chunks.length === 1) return void raw.write(chunks[0] as Uint8Array);
    raw.cork();
    for (const chunk of chunks) raw.write(chunk);
    raw.uncork();
  }

  clear(): void {
    this.out = null;
    this.bytes = 0;
  }
}
