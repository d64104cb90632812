/**
 * Output written once per event-loop turn, for /relay, /sealed and /signal connections. TurnFlush runs
 * each registered sink's flush at the end of the current turn: one setImmediate for all of them
 * (one TurnFlush per server: ServerContext.turns), which fires after the poll phase, so after every
 * socket read of this turn. TurnQueue is such a sink for one WebSocket: what it was given in a turn
 * goes to the TCP socket under the WebSocket in one write, instead of one ws.send() per message.
 * It takes messages (push: framed here, relay/ws-frames.ts) and prebuilt frames (pushFrame:
 * signaling/publish-frame.ts, written as they are).
 * TurnFlush also frames each message once per turn: a room sends the same bytes object to all its
 * connections, and each receiver that has only that message this turn writes the same frame.
 */
import type { WebSocket } from 'ws';
import { COPY_LIMIT, encodeBinaryFrames, frameOnce } from '../relay/ws-frames.js';
import type { UnsentBudget, UnsentHolder } from './unsent-budget.js';
import { tcpSocket } from './ws-internals.js';

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

  /**
   * Runs this turn's flushes now, before the end of the turn: at shutdown every socket is closed
   * at once (app.ts), and what the sockets were given this turn must go before their close frames.
   * The immediate already scheduled then finds nothing due.
   */
  flushNow(): void {
    if (this.due.length > 0 && !this.flushing) this.run();
  }
}

/**
 * First element of a turn's array of prebuilt frames (an array without it holds messages). It is
 * empty, so the array concatenates to the frames themselves.
 */
const FRAMES = Buffer.alloc(0);

/**
 * One WebSocket's output of the current turn. A sealed connection holds a TurnOutput; a
 * RelayConnection and a SignalingConnection are one (relay/connection.ts, signaling/connection.ts),
 * so an idle relay or signaling connection holds no object more than its two fields here.
 */
export abstract class TurnQueue implements TurnSink {
  /**
   * This turn's output, null between turns (an idle connection holds no array): a prebuilt frame
   * alone (a signaling receiver's usual turn: the same Buffer for every receiver), or an array of
   * messages, or FRAMES followed by frames. A turn given both keeps them in order as frames.
   */
  private out: Uint8Array | Uint8Array[] | null = null;
  private queued = 0;
  protected abstract readonly socket: WebSocket;
  protected abstract readonly turns: TurnFlush;

  /**
   * The instance's budget of unsent bytes, told of each large message (over COPY_LIMIT) held by
   * reference from its push until the kernel took it (ws/unsent-budget.ts: counted once however
   * many receivers hold it); null: not told (read only for large messages).
   */
  protected get unsentBudget(): UnsentBudget | null {
    return null;
  }

  /** Whom the budget charges for this socket: the connection (this one, unless it holds a TurnOutput). */
  protected get unsentHolder(): UnsentHolder {
    return this as unknown as UnsentHolder;
  }

  /** Bytes waiting for the end of this turn (the slow-consumer checks add ws's bufferedAmount). */
  get queuedBytes(): number {
    return this.queued;
  }

  /** What this socket holds unsent: ws's bufferedAmount (its TCP socket's buffer and ws's queue) and this turn's output. */
  get unsentBytes(): number {
    return this.socket.bufferedAmount + this.queued;
  }

  /** Whether anything waits for the end of this turn. */
  get turnPending(): boolean {
    return this.out !== null;
  }

  /** Queues one message (a binary frame's payload), framed at the end of the turn; not copied or changed until then. */
  push(message: Uint8Array): void {
    const out = this.out;
    if (out === null) {
      if (!tcpSocket(this.socket)) return this.socket.send(message);
      this.out = [message];
      this.turns.schedule(this);
    } else if (Array.isArray(out) && out[0] !== FRAMES) out.push(message);
    else return this.pushFrame(frameOnce(message)); // this turn holds frames: the message joins them framed
    this.queued += message.length;
    // Written by reference (flushTurn): held until the kernel takes it.
    if (message.length > COPY_LIMIT) this.unsentBudget?.holdShared(this.unsentHolder, message);
  }

  /** Queues one whole WebSocket frame, written as it is (the same object may go to many sockets). */
  pushFrame(frame: Uint8Array): void {
    const out = this.out;
    if (out === null) {
      this.out = frame;
      this.turns.schedule(this);
      // Alone, written by reference (flushTurn): held until the kernel takes it.
      if (frame.length > COPY_LIMIT) this.unsentBudget?.holdShared(this.unsentHolder, frame);
    } else if (!Array.isArray(out)) {
      this.out = [FRAMES, out, frame];
      this.releaseHeld(out); // to be copied with the frame: this socket's own bytes from now on
    } else if (out[0] === FRAMES) out.push(frame);
    else {
      // messages queued this turn: framed now, in order, ahead of the frame (and copied with it)
      this.releaseHeld(out);
      const chunks = encodeBinaryFrames(out);
      this.queued = 0;
      for (const chunk of chunks) this.queued += chunk.length;
      this.out = [FRAMES, ...chunks, frame];
    }
    this.queued += frame.length;
  }

  /**
   * Writes this turn's output in one write: at the end of the turn (TurnFlush), and before a close
   * frame the connection sends. Frames go straight to the TCP socket: ws sends nothing of its own
   * but whole control frames (no compression is negotiated), which may come between turns but not
   * inside a frame; once ws has sent (or answered) a close frame the socket is no longer OPEN and
   * nothing is written.
   */
  flushTurn(): void {
    const out = this.out;
    if (out === null) return;
    const bytes = this.queued;
    this.out = null;
    this.queued = 0;
    const socket = this.socket;
    const raw = tcpSocket(socket);
    if (!raw || raw.destroyed || socket.readyState !== socket.OPEN) return this.releaseHeld(out);
    if (!Array.isArray(out)) {
      const budget = out.length > COPY_LIMIT ? this.unsentBudget : null;
      return void (budget ? raw.write(out, releaseOnWrite(budget, this.unsentHolder, out)) : raw.write(out));
    }
    if (out[0] === FRAMES) return void raw.write(Buffer.concat(out, bytes));
    // The usual relay turn: one message, also sent to the room's other connections: one shared frame.
    const only = out.length === 1 ? (out[0] as Uint8Array) : null;
    if (only && only.length <= COPY_LIMIT) return void raw.write(this.turns.framed(only));
    const chunks = encodeBinaryFrames(out);
    // One chunk: small messages packed (a large one is two chunks, its header and itself).
    if (chunks.length === 1) return void raw.write(chunks[0] as Uint8Array);
    const budget = this.unsentBudget;
    raw.cork();
    for (const chunk of chunks) {
      // A large message written by reference: its hold ends when the kernel took it.
      if (budget !== null && chunk.length > COPY_LIMIT && out.includes(chunk)) raw.write(chunk, releaseOnWrite(budget, this.unsentHolder, chunk));
      else raw.write(chunk);
    }
    raw.uncork();
  }

  /** Drops this turn's output (a slow consumer, a closed socket). */
  dropTurn(): void {
    const out = this.out;
    this.out = null;
    this.queued = 0;
    if (out !== null) this.releaseHeld(out);
  }

  /** The holds (push, pushFrame) of a turn's output that will not be written by reference. */
  private releaseHeld(out: Uint8Array | Uint8Array[]): void {
    if (!Array.isArray(out)) {
      if (out.length > COPY_LIMIT) this.unsentBudget?.releaseShared(this.unsentHolder, out);
      return;
    }
    if (out[0] === FRAMES) return; // copied: nothing held
    const budget = this.unsentBudget;
    if (budget === null) return;
    for (const message of out) if (message.length > COPY_LIMIT) budget.releaseShared(this.unsentHolder, message);
  }
}

/** The callback of one large message's write: the kernel took it (or the socket failed), its hold ends. */
function releaseOnWrite(budget: UnsentBudget, holder: UnsentHolder, message: Uint8Array): () => void {
  return () => budget.releaseShared(holder, message);
}

/** The connection holding a TurnOutput, charged by the instance's budget for its socket. */
export interface BudgetHolder extends UnsentHolder {
  readonly unsentBudget: UnsentBudget;
}

/**
 * A TurnQueue held by a connection (sealed): `holder` is the connection the budget charges (one
 * field, not two: the budget is the holder's).
 */
export class TurnOutput extends TurnQueue {
  constructor(
    protected readonly socket: WebSocket,
    protected readonly turns: TurnFlush,
    private readonly holder: BudgetHolder | null = null,
  ) {
    super();
  }

  protected override get unsentBudget(): UnsentBudget | null {
    return this.holder?.unsentBudget ?? null;
  }

  protected override get unsentHolder(): UnsentHolder {
    return this.holder as UnsentHolder;
  }
}
