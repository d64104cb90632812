/**
 * Sends at a fixed rate: every few milliseconds, as many sends as are due since the start
 * (so a late timer catches up instead of lowering the rate), spread over the senders in turn.
 */
export async function pace(perSecond: number, seconds: number, send: (n: number) => void): Promise<number> {
  const total = Math.round(perSecond * seconds);
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * perSecond) / 1000));
      while (sent < due) send(sent++);
      if (sent >= total) {
        clearInterval(timer);
        done();
      }
    }, 2);
  });
  return sent;
}
