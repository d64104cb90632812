/**
 * Which ICE candidate pair a connection really uses, read from the W3C `getStats()` report.
 * Pure and DOM-free: works in a bundled browser page, with @roamhq/wrtc and with the
 * node-datachannel polyfill. Assert on `local.candidateType` (`host`, `srflx`, `relay`)
 * and, for TURN, on `local.url`.
 */

export interface CandidateInfo {
  candidateType: string;
  address: string;
  port: number;
  /** `udp`/`tcp`; absent where the implementation does not say (node-datachannel) */
  protocol?: string;
  /** the STUN/TURN URL that produced this candidate (local relay/srflx candidates only) */
  url?: string;
}

export interface SelectedPair {
  local: CandidateInfo;
  remote: CandidateInfo;
  state: string;
}

interface StatsLike {
  forEach(cb: (value: Record<string, unknown>) => void): void;
}

function candidate(stats: Map<string, Record<string, unknown>>, id: unknown): CandidateInfo | undefined {
  const c = typeof id === 'string' ? stats.get(id) : undefined;
  if (!c) return undefined;
  const info: CandidateInfo = {
    candidateType: String(c.candidateType),
    address: String(c.address ?? c.ip),
    port: Number(c.port),
  };
  if (typeof c.protocol === 'string') info.protocol = c.protocol;
  if (typeof c.url === 'string') info.url = c.url;
  return info;
}

/** The pair the transport selected (or the nominated succeeded pair); undefined before ICE connects. */
export function selectedCandidatePair(report: StatsLike): SelectedPair | undefined {
  const stats = new Map<string, Record<string, unknown>>();
  report.forEach((s) => stats.set(String(s.id), s));
  const all = [...stats.values()];
  const transport = all.find((s) => s.type === 'transport' && typeof s.selectedCandidatePairId === 'string');
  const pair =
    (transport && stats.get(transport.selectedCandidatePairId as string)) ??
    all.find((s) => s.type === 'candidate-pair' && (s.selected === true || s.nominated === true) && s.state === 'succeeded');
  if (!pair) return undefined;
  const local = candidate(stats, pair.localCandidateId);
  const remote = candidate(stats, pair.remoteCandidateId);
  if (!local || !remote) return undefined;
  return { local, remote, state: String(pair.state) };
}

/**
 * The selected pair once it reports 'succeeded': data can flow while Chromium still reports it
 * 'in-progress' (its nomination check outstanding, seen under load), so the report is read
 * again every 50 ms for up to 5 s; what was read last is returned either way.
 */
export async function settledCandidatePair(getStats: () => Promise<StatsLike>): Promise<SelectedPair | undefined> {
  let pair = selectedCandidatePair(await getStats());
  for (let i = 0; i < 100 && pair?.state !== 'succeeded'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    pair = selectedCandidatePair(await getStats());
  }
  return pair;
}
