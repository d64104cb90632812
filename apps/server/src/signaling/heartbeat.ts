/**
 * WebSocket-level liveness: one timer for all signaling sockets. Every interval each
 * socket that answered the previous ping (or sent anything) is pinged again; one that
 * did not is terminated, since a dead peer would never complete a close handshake.
 */
export interface HeartbeatMember {
  /** ping, or terminate if the previous ping went unanswered */
  beat(): void;
}

export class Heartbeat {
  private readonly members = new Set<HeartbeatMember>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.timer = setInterval(() => {
      for (const member of this.members) member.beat();
    }, intervalMs);
    this.timer.unref();
  }

  add(member: HeartbeatMember): void {
    this.members.add(member);
  }

  delete(member: HeartbeatMember): void {
    this.members.delete(member);
  }

  stop(): void {
    clearInterval(this.timer);
    this.members.clear();
  }
}
