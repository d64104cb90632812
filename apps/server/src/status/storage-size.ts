/**
 * The database size for the status page. Storage registers how to measure itself (one
 * storageBytes() per engine, relay/persistence/types.ts); the figure is read at most once per
 * CACHE_MS however many pages poll, so a stat or a catalogue query is all it ever costs.
 */

export interface StorageFigure {
  engine: string;
  /** null until storage answered once, or when it does not answer */
  bytes: number | null;
  /** every instance reports the same database (PostgreSQL): cluster totals take it once */
  shared: boolean;
}

const CACHE_MS = 5000;

export class StorageSize {
  private readonly sources: Array<() => Promise<number>> = [];
  private cached: { at: number; value: Promise<number | null> } | undefined;

  constructor(
    private readonly engine: string,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** A part of what this instance stores (the relay's database; the sealed rooms' when kept apart). */
  add(read: () => Promise<number>): void {
    this.sources.push(read);
    this.cached = undefined;
  }

  async read(now = Date.now()): Promise<StorageFigure> {
    if (!this.cached || now - this.cached.at >= CACHE_MS) this.cached = { at: now, value: this.measure() };
    return { engine: this.engine, bytes: await this.cached.value, shared: this.engine === 'postgres' };
  }

  private async measure(): Promise<number | null> {
    if (this.sources.length === 0) return null;
    try {
      const parts = await Promise.all(this.sources.map((read) => read()));
      return parts.reduce((a, b) => a + b, 0);
    } catch (err) {
      this.onError(err);
      return null;
    }
  }
}
