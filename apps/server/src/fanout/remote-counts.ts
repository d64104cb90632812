/**
 * Subscriber counts that other instances announced, per topic. An entry not refreshed within
 * its lifetime is dropped, so a crashed instance stops counting without telling anyone.
 */
export class RemoteCounts {
  private readonly topics = new Map<string, Map<string, { count: number; at: number }>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  set(topic: string, instance: string, count: number): void {
    let entries = this.topics.get(topic);
    if (count === 0) {
      entries?.delete(instance);
      if (entries?.size === 0) this.topics.delete(topic);
      return;
    }
    if (!entries) this.topics.set(topic, (entries = new Map()));
    entries.set(instance, { count, at: this.now() });
  }

  total(topic: string): number {
    const entries = this.topics.get(topic);
    if (!entries) return 0;
    const oldest = this.now() - this.ttlMs;
    let sum = 0;
    for (const [instance, e] of entries) {
      if (e.at < oldest) entries.delete(instance);
      else sum += e.count;
    }
    if (entries.size === 0) this.topics.delete(topic);
    return sum;
  }

  forget(topic: string): void {
    this.topics.delete(topic);
  }
}
