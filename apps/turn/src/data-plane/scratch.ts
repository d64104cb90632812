/**
 * Reusable header buffers for sends that put a header in front of a payload. Reuse is safe
 * only when the send finished before the send call returned: that needs a socket created with
 * `directLookup` (dgram's default lookup defers every send to the next tick, even for IP
 * literals), and a datagram the kernel took at once. When a send was queued, its header is
 * still referenced, so fresh buffers are taken from then on. Buffer lists can always be
 * reused: a queued send keeps a copy of the list (dgram-fast.ts).
 */

const EMPTY = Buffer.alloc(0);

/** For dgram.createSocket({ lookup }): every address we send to is already an IP literal. */
export function directLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

export class ScratchSends {
  header = Buffer.allocUnsafeSlow(4);
  prefix4 = Buffer.allocUnsafeSlow(36);
  prefix6 = Buffer.allocUnsafeSlow(48);
  readonly single: Buffer[] = [EMPTY];
  readonly pair: Buffer[] = [EMPTY, EMPTY];
  readonly triple: Buffer[] = [EMPTY, EMPTY, EMPTY];

  /** Call right after a send that used these buffers, with what DatagramSender.send returned. */
  sent(taken: boolean): void {
    // the payloads are not kept alive by the scratch lists
    this.single[0] = this.pair[1] = this.triple[1] = EMPTY;
    if (taken) return;
    this.header = Buffer.allocUnsafeSlow(4);
    this.prefix4 = Buffer.allocUnsafeSlow(36);
    this.prefix6 = Buffer.allocUnsafeSlow(48);
  }
}
