/** RTCIceServer entries from TURN_URLS (default `turn:<request host>:3478`), STUN listed apart. */
import type { TurnCredentials } from '@sync-suite/shared/node';

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** `hostname`: the request's host without its port (Fastify's `req.hostname`; IPv6 keeps its brackets). */
export function iceServersFor(turnUrls: readonly string[] | undefined, hostname: string, creds: TurnCredentials | undefined): IceServer[] {
  const urls = turnUrls?.length ? turnUrls : [`turn:${hostname}:3478`];
  const stun = urls.filter((u) => u.startsWith('stun:'));
  const turn = urls.filter((u) => !u.startsWith('stun:'));
  // Every TURN server answers STUN Binding on its port: derive stun: URLs from the turn: ones.
  const derived = turn.filter((u) => u.startsWith('turn:')).map((u) => `stun:${u.slice(5).split('?')[0]}`);
  const stunUrls = [...new Set([...stun, ...derived])];
  const servers: IceServer[] = stunUrls.length ? [{ urls: stunUrls }] : [];
  if (creds && turn.length) servers.push({ urls: turn, username: creds.username, credential: creds.credential });
  return servers;
}
