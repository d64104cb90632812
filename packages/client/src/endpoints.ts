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
  const base = (protocol: string): string => {
    const out = new URL(url.href);
    out.protocol = protocol;
    out.search = '';
    out.hash = '';
    out.pathname = out.pathname.replace(/\/+$/, '');
    return out.href.replace(/\/+$/, '');
  };
  return { http: base(scheme.http), ws: base(scheme.ws) };
}

/**
 * `base` with these query parameters set (undefined ones left out), keeping any query `base`
 * already has (a proxy's own parameters): a parameter of the same name is replaced.
 */
export function withQuery(base: string, params: Record<string, string | undefined>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

/** `base` with `segment` appended to its path (percent-encoded), keeping its query. */
export function withPath(base: string, segment: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(segment)}`;
  return url.toString();
}
