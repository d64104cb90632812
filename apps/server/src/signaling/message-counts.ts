/**
 * sync_signaling_messages_total{type}, counted in plain numbers and added to the prom-client
 * counter whenever the counter is read (a scrape, the status sampler, a test), through its
 * collect hook (foldOnCollect): a labelled inc() per message would hash its labels object each time.
 */
import type { SignalingType } from '@sync-suite/shared';
import type { Counter } from 'prom-client';
import { foldOnCollect } from '@sync-suite/shared/node';

export class MessageCounts {
  private subscribe = 0;
  private unsubscribe = 0;
  private publish = 0;
  private ping = 0;

  constructor(counter: Counter<'type'>) {
    foldOnCollect(counter, (c) => this.fold(c));
  }

  add(type: SignalingType): void {
    switch (type) {
      case 'publish':
        this.publish++;
        return;
      case 'ping':
        this.ping++;
        return;
      case 'subscribe':
        this.subscribe++;
        return;
      case 'unsubscribe':
        this.unsubscribe++;
        return;
    }
  }

  /** Adds what was counted since the last read to the counter. */
  private fold(counter: Counter<'type'>): void {
    if (this.subscribe > 0) counter.inc({ type: 'subscribe' }, this.subscribe);
    if (this.unsubscribe > 0) counter.inc({ type: 'unsubscribe' }, this.unsubscribe);
    if (this.publish > 0) counter.inc({ type: 'publish' }, this.publish);
    if (this.ping > 0) counter.inc({ type: 'ping' }, this.ping);
    this.subscribe = this.unsubscribe = this.publish = this.ping = 0;
  }
}
