import { expect, it } from 'vitest';
import { ReportGate } from '../../src/logging/report-gate.js';

it('reports a key once per interval, keys apart, and forgets all keys past its bound', () => {
  const gate = new ReportGate(1000, 3);
  expect([gate.shouldReport('a', 0), gate.shouldReport('a', 999), gate.shouldReport('a', 1000)]).toEqual([true, false, true]);
  expect([gate.shouldReport('b', 1000), gate.shouldReport('c', 1000)]).toEqual([true, true]);
  // a fourth key: the three remembered are forgotten, so 'a' is reported again within its interval
  expect([gate.shouldReport('d', 1001), gate.shouldReport('a', 1002), gate.shouldReport('d', 1003)]).toEqual([true, true, false]);
});
