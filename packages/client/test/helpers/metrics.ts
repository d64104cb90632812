/** One metric of the in-process server's /metrics, summed over label sets; throws when it is not exposed. */
import { parsePrometheus } from '../../../../test/helpers/prometheus.js';
import type { TestServer } from '../../../../test/helpers/server.js';

export async function metric(server: TestServer, name: string): Promise<number> {
  const res = await server.app.inject({ url: '/metrics' });
  return parsePrometheus(res.body).value(name);
}
