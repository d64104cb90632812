/**
 * A DocStore that reports each committed batch. Relay updates go to other instances only after
 * they are committed: an instance that subscribes to a room and then reads it from storage
 * therefore sees every update either in storage or on the channel, never neither, and an
 * update is never known elsewhere while it could still be lost with its instance.
 */
import type { AppendBatch, DocStore, StoredRoom } from '../relay/persistence/types.js';

export class CommitReportingStore implements DocStore {
  constructor(
    private readonly inner: DocStore,
    private readonly onCommitted: (batches: readonly AppendBatch[]) => void,
  ) {}

  get engine(): string {
    return this.inner.engine;
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  load(room: string): Promise<StoredRoom> {
    return this.inner.load(room);
  }

  async append(batches: readonly AppendBatch[]): Promise<void> {
    await this.inner.append(batches);
    this.onCommitted(batches);
  }

  compact(room: string, snapshot: Uint8Array, throughSeq: number): Promise<void> {
    return this.inner.compact(room, snapshot, throughSeq);
  }

  check(): Promise<void> {
    return this.inner.check();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
