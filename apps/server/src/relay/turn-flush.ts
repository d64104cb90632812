/**
 * Runs each registered sink's flush once at the end of the current event-loop turn: one
 * setImmediate for all of them, which fires after the poll phase, so after every socket read of
 * this turn. Relay connections use it to write everything they were sent in a turn at once.
 * It also frames each message once per turn: a room sends the same bytes object to all its
 * connections, and each receiver that has only that message this turn writes the same frame.
 */
import { frameOnce } from './ws-frames.js';

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
