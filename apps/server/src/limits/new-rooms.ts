/**
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR: how many rooms with nothing stored one token `sub` may open in
 * a sliding hour, on this instance. Opening the same room again does not count twice. Memory is
 * bounded by subs × limit entries, pruned as they age out.
 */
const HOUR_MS = 3_600_000;

export class NewRoomLimiter {
  private readonly bySub = new Map<string, Map<string, number>>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly perHour: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweep = setInterval(() => this.pruneAll(), 60_000);
    this.sweep.unref();
  }

  /** true when `sub` may open the new room `room` now (and it is counted). */
  take(sub: string, room: string): boolean {
    const rooms = this.prune(sub);
    if (rooms?.has(room)) return true;
    if ((rooms?.size ?? 0) >= this.perHour) return false;
    if (rooms) rooms.set(room, this.now());
    else this.bySub.set(sub, new Map([[room, this.now()]]));
    return true;
  }

  stop(): void {
    clearInterval(this.sweep);
  }

  private prune(sub: string): Map<string, number> | undefined {
    const rooms = this.bySub.get(sub);
    if (!rooms) return undefined;
    const cutoff = this.now() - HOUR_MS;
    for (const [room, at] of rooms) if (at <= cutoff) rooms.delete(room);
    if (rooms.size > 0) return rooms;
    this.bySub.delete(sub);
    return undefined;
  }

  private pruneAll(): void {
    for (const sub of [...this.bySub.keys()]) this.prune(sub);
  }
}

const shared = new WeakMap<object, NewRoomLimiter>();

/** One limiter per server (`owner`), shared by /relay and /sealed: the quota is per sub, whatever the endpoint. */
export function sharedNewRoomLimiter(owner: object, perHour: number): NewRoomLimiter {
  let limiter = shared.get(owner);
  if (!limiter) shared.set(owner, (limiter = new NewRoomLimiter(perHour)));
  return limiter;
}
