/**
 * ws/unsent-budget.ts's count on its own, with holders whose unsent bytes the test sets: a charge
 * replaces the receiver's previous one (no double count), a release takes it back (once), a
 * recount corrects charges of receivers that drained, and over the budget the receivers holding
 * the most are dropped until 7/8 of it is left; a large message held by reference by many
 * receivers is counted once. The real server's case: unsent-budget.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { UnsentBudget, type UnsentHolder } from '../src/ws/unsent-budget.js';

class Holder implements UnsentHolder {
  shed = false;
  constructor(public unsentBytes = 0) {}
  shedUnsent(): void {
    // As a dropped socket: destroyed, but ws's bufferedAmount reads its buffer until the destroy
    // completes (a later tick), so the bytes are still there when the budget looks again.
    this.shed = true;
  }
}

const budgets: UnsentBudget[] = [];
afterEach(() => budgets.splice(0).forEach((b) => b.stop()));
function budget(max: number): UnsentBudget {
  const b = new UnsentBudget(max);
  budgets.push(b);
  return b;
}

/** Charges `h` as a send does: what it holds once the message is queued. */
function send(b: UnsentBudget, h: Holder, bytes: number): void {
  h.unsentBytes += bytes;
  b.charge(h, h.unsentBytes);
}

describe('UnsentBudget', () => {
  it('counts what each receiver holds once, and returns to 0 when every receiver is released', () => {
    const b = budget(1000);
    const [x, y] = [new Holder(), new Holder()];
    send(b, x, 100);
    send(b, x, 100);
    send(b, y, 50);
    expect(b.bytes).toBe(250); // x holds 200, not 100 + 200
    x.unsentBytes = 0; // drained: the count is an upper bound until x is charged or recounted
    expect(b.bytes).toBe(250);
    send(b, x, 10);
    expect(b.bytes).toBe(60);
    b.release(x);
    b.release(x); // a second close of the same receiver takes nothing more
    expect(b.bytes).toBe(50);
    b.release(y);
    b.release(new Holder()); // never charged
    expect([b.bytes, b.charged]).toEqual([0, 0]);
  });

  it('recounts before dropping anyone: charges of receivers that drained are no reason to', () => {
    const b = budget(1000);
    const [x, y] = [new Holder(), new Holder()];
    send(b, x, 800);
    x.unsentBytes = 0; // drained since
    send(b, y, 300); // 1100 counted, 300 held
    expect([x.shed, y.shed]).toEqual([false, false]);
    expect([b.bytes, b.charged]).toEqual([300, 1]); // x left the charged receivers
  });

  it('over the budget drops the receivers holding the most until 7/8 of it is left, the sender only if it is among them', () => {
    const b = budget(1000);
    const [big, mid, small, sender] = [new Holder(), new Holder(), new Holder(), new Holder()];
    send(b, big, 500);
    send(b, mid, 300);
    send(b, small, 100);
    send(b, sender, 50);
    expect(b.bytes).toBe(950);
    send(b, sender, 100); // 1050: over
    expect([big.shed, mid.shed, small.shed, sender.shed]).toEqual([true, false, false, false]);
    expect(b.bytes).toBe(550);
    // The sender holding the most is the one dropped.
    send(b, sender, 400); // 950
    send(b, sender, 100); // 1050
    expect([mid.shed, small.shed, sender.shed]).toEqual([false, false, true]);
    expect(b.bytes).toBe(400);
    // Dropped receivers' closes release nothing more.
    for (const h of [big, mid, small, sender]) b.release(h);
    expect(b.bytes).toBe(0);
  });

  it('over the budget, drops as many as it takes to get down to 7/8 of it', () => {
    const b = budget(1000);
    const holders = Array.from({ length: 10 }, () => new Holder());
    for (const h of holders) send(b, h, 100);
    send(b, holders[0] as Holder, 1); // 1001: down to 875 at most, dropping the largest first
    expect(holders.map((h) => h.shed)).toEqual([true, true, false, false, false, false, false, false, false, false]);
    expect(b.bytes).toBe(800);
  });

  it('counts a large message held by reference once, whoever holds it; each holder is charged its own bytes', () => {
    const b = budget(1000);
    const message = new Uint8Array(600);
    const readers = Array.from({ length: 5 }, () => new Holder());
    // Each reader queues the same message (and a 10-byte header of its own): 600 counted once.
    for (const r of readers) {
      b.holdShared(r, message);
      send(b, r, 610);
    }
    expect(readers.map((r) => r.shed)).toEqual(readers.map(() => false));
    expect([b.bytes, b.sharedBytes, b.holding]).toEqual([600 + 5 * 10, 600, 5]);
    // The kernel took it for four of them: still held once by the fifth.
    for (const r of readers.slice(0, 4)) {
      r.unsentBytes -= 610;
      b.releaseShared(r, message);
      b.releaseShared(r, message); // a second callback for one hold takes nothing
    }
    expect([b.recount(), b.sharedBytes, b.holding]).toEqual([610, 600, 1]);
    const last = readers[4] as Holder;
    last.unsentBytes = 0;
    b.releaseShared(last, message);
    expect([b.recount(), b.sharedBytes, b.holding, b.charged]).toEqual([0, 0, 0, 0]);
  });

  it('counts a message held twice by one holder once, until both holds end; a release of the holder ends them all', () => {
    const b = budget(10_000);
    const [m1, m2] = [new Uint8Array(500), new Uint8Array(300)];
    const [x, y] = [new Holder(), new Holder()];
    b.holdShared(x, m1);
    send(b, x, 500);
    b.holdShared(x, m1);
    send(b, x, 500);
    b.holdShared(x, m2);
    send(b, x, 300 + 7); // 7 bytes of x's own
    b.holdShared(y, m2);
    send(b, y, 300);
    expect([b.bytes, b.sharedBytes]).toEqual([807, 800]);
    x.unsentBytes -= 500;
    b.releaseShared(x, m1); // one of x's two holds of m1
    expect([b.recount(), b.sharedBytes]).toEqual([807, 800]);
    b.release(x); // closed: its holds go (m1 with it; m2 is still y's)
    b.releaseShared(x, m1); // a write's callback after the close: nothing
    b.release(x);
    expect([b.bytes, b.sharedBytes, b.holding]).toEqual([300, 300, 1]);
    b.release(y);
    expect([b.bytes, b.sharedBytes, b.holding, b.charged]).toEqual([0, 0, 0, 0]);
  });

  it('over the budget ranks receivers by all they hold, held messages too, and a message goes once its last holder is dropped', () => {
    const b = budget(1000);
    const [stalledA, stalledB, reader] = [new Holder(), new Holder(), new Holder()];
    // Two stalled receivers hold the same messages; the reader took them (its holds ended).
    for (let i = 0; i < 3; i++) {
      const message = new Uint8Array(300);
      for (const h of [stalledA, stalledB, reader]) {
        b.holdShared(h, message);
        send(b, h, 300);
      }
      reader.unsentBytes -= 300;
      b.releaseShared(reader, message);
    }
    // 900 held once: within the budget; the stalled receivers are each charged nothing of their own.
    expect([b.bytes, b.sharedBytes]).toEqual([900, 900]);
    send(b, reader, 50); // 950
    send(b, reader, 100); // 1050 counted, 150 of it the reader's: dropping one stalled receiver frees nothing
    expect([stalledA.shed, stalledB.shed, reader.shed]).toEqual([true, true, false]);
    expect([b.bytes, b.sharedBytes, b.holding]).toEqual([150, 0, 0]);
  });
});
