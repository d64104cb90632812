import { describe, expect, it } from 'vitest';
import { TopicJoinBudgets } from '../src/limits/topic-join-budgets.js';

describe('TopicJoinBudgets', () => {
  it('one budget per key, refilled over time; keys whose budget is full again are forgotten', () => {
    const b = new TopicJoinBudgets(1000, 5); // 5 joins, one back per second
    expect(b.take('alice', 5, 0)).toBe(true);
    expect(b.take('alice', 1, 0)).toBe(false);
    expect(b.take('bob', 5, 0)).toBe(true);
    expect(b.take('alice', 1, 1000)).toBe(true); // one came back
    expect(b.take('alice', 1, 1000)).toBe(false);
    for (let i = 0; i < 100; i++) b.take(`sub-${i}`, 1, 2000);
    expect(b.size).toBe(102);
    // past every budget's full-again time the next take sweeps them: only the new key is held
    expect(b.take('carol', 1, 20_000)).toBe(true);
    expect(b.size).toBe(1);
  });
});
