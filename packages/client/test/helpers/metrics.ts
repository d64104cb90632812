/** Read one sample of a metric from the in-process server's /metrics (sum over label sets). */
import type { TestServer } from '../../../../test/helpers/server.js';

export async function metric(server: TestServer, name: string): Promise<number> {
  const res = await server.app.inject({ url: '/metrics' });
  let sum = 0;
  let seen = false;
  for (const line of res.body.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === name) {
      seen = true;
      sum += Number(match[3]);
    }
  }
  if (!seen) throw new Error(`metric ${name} not exposed`);
  return sum;
}
