/**
 * Runs each registered sink's flush once at the end of the current event-loop turn: one
 * setImmediate for all of them, which fires after the poll phase, so after every socket read of
 * this turn. Relay connections use it to write everything they were sent in a turn at once.
 */

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
