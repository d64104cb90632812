/** GET /turn-credentials: the ICE servers (STUN, TURN with REST credentials) for WebRTC. */

export interface IceServerConfig {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface TurnCredentials {
  iceServers: IceServerConfig[];
  /** seconds the TURN credentials stay valid */
  ttl: number;
}

export type FetchLike = (input: string, init?: { headers?: Record<string, string>; signal?: AbortSignal }) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
}>;

function isIceServer(value: unknown): value is IceServerConfig {
  if (!value || typeof value !== 'object') return false;
  const urls = (value as { urls?: unknown }).urls;
  return typeof urls === 'string' || (Array.isArray(urls) && urls.every((u) => typeof u === 'string'));
}

export function parseTurnCredentials(body: unknown): TurnCredentials {
  const { iceServers, ttl } = (body ?? {}) as { iceServers?: unknown; ttl?: unknown };
  if (!Array.isArray(iceServers) || !iceServers.every(isIceServer)) throw new Error('turn-credentials: iceServers missing or malformed');
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new Error('turn-credentials: ttl missing or not positive');
  return { iceServers, ttl };
}

export async function fetchTurnCredentials(
  httpBase: string,
  token: string | undefined,
  fetchImpl: FetchLike,
  timeoutMs: number,
): Promise<TurnCredentials> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const res = await fetchImpl(`${httpBase}/turn-credentials`, { headers, signal: abort.signal });
    if (!res.ok) throw new Error(`turn-credentials: HTTP ${res.status}`);
    return parseTurnCredentials(await res.json());
  } finally {
    clearTimeout(timer);
  }
}
