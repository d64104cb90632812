/**
 * Container HEALTHCHECK: `node healthcheck.mjs server|turn` exits 0 when the process's
 * /healthz answers 200 within 3 s, 1 otherwise. The image has no curl or wget.
 */
const role = process.argv[2] ?? 'server';
const env = process.env;

function localHost(bound: string | undefined): string {
  // A wildcard listener is reachable on loopback; a specific address must be used as is.
  if (!bound || bound === '0.0.0.0' || bound === '::') return '127.0.0.1';
  return bound.includes(':') ? `[${bound}]` : bound;
}

const url =
  role === 'turn'
    ? `http://${localHost(env['TURN_METRICS_HOST'])}:${env['TURN_METRICS_PORT'] || '9641'}/healthz`
    : `http://${localHost(env['HOST'])}:${env['PORT'] || '4444'}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
