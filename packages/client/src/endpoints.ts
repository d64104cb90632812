/**
 * Where the server's endpoints are, from the one `serverUrl` an app configures.
 * `http(s)://host[:port][/path]` and `ws(s)://…` are both accepted; a path prefix is kept
 * (a server behind a reverse proxy at `/sync`).
 */

export interface Endpoints {
  /** http(s) base, for GET /turn-credentials */
  http: string;
  /** ws(s) base, for WS /signal and WS /relay/<room> */
  ws: string;
}

const SCHEMES: Record<string, { http: string; ws: string }> = {
  'http:': { http: 'http:', ws: 'ws:' },
  'https:': { http: 'https:', ws: 'wss:' },
  'ws:': { http: 'http:', ws: 'ws:' },
  'wss:': { http: 'https:', ws: 'wss:' },
};

export function endpointsFor(serverUrl: string): Endpoints {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new TypeError(`serverUrl is not a URL: ${JSON.stringify(serverUrl)}`);
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme) throw new TypeError(`serverUrl must be http(s):// or ws(s)://, got ${url.protocol}`);
  const rest = `//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  return { http: `${scheme.http}${rest}`, ws: `${scheme.ws}${rest}` };
}

/** `base?a=1&b=2` with the undefined entries left out. */
export function withQuery(base: string, params: Record<string, string | undefined>): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join('&');
  return query ? `${base}?${query}` : base;
}
