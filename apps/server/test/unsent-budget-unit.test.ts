/**
 * ws/unsent-budget.ts's count on its own, with holders whose unsent bytes the test sets: a charge
 * replaces the receiver's previous one (no double count), a release takes it back (once), a
 * recount corrects charges of receivers that drained, and over the budget the receivers holding
 * the most are dropped until 7/8 of it is left. The real server's case: unsent-budget.test.ts.
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
});
