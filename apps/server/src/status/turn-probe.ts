/**
 * TURN allocations for the status page, read from the TURN server's Prometheus endpoint
 * (TURN_METRICS_URL). Answers are cached briefly so that many open status pages cost the
 * TURN server one scrape per second at most. METRICS_TOKEN goes along as a bearer token: the TURN
 * server's /metrics needs it when it has the same METRICS_TOKEN (apps/turn/src/health.ts).
 */

export interface TurnSnapshot {
  reachable: boolean;
  allocations?: number;
  allocationsTotal?: number;
  relayedBytes?: number;
}

const CACHE_MS = 1000;
const TIMEOUT_MS = 1500;

export class TurnProbe {
  private cached: { at: number; value: Promise<TurnSnapshot> } | undefined;

  constructor(
    private readonly url: string | undefined,
    private readonly token?: string,
  ) {}

  get configured(): boolean {
    return !!this.url;
  }

  read(now = Date.now()): Promise<TurnSnapshot> | undefined {
    if (!this.url) return undefined;
    if (!this.cached || now - this.cached.at >= CACHE_MS) this.cached = { at: now, value: scrape(this.url, this.token) };
    return this.cached.value;
  }
}

async function scrape(url: string, token: string | undefined): Promise<TurnSnapshot> {
  try {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!res.ok) return { reachable: false };
    return { reachable: true, ...parseTurnMetrics(await res.text()) };
  } catch {
    return { reachable: false };
  }
}

/** Pure: the three TURN figures from Prometheus text (summing labelled series). */
export function parseTurnMetrics(text: string): Omit<TurnSnapshot, 'reachable'> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(turn_allocations|turn_allocations_total|turn_relayed_bytes_total)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (Number.isFinite(value)) sums.set(m[1] as string, (sums.get(m[1] as string) ?? 0) + value);
  }
  return {
    allocations: sums.get('turn_allocations'),
    allocationsTotal: sums.get('turn_allocations_total'),
    relayedBytes: sums.get('turn_relayed_bytes_total'),
  };
}
