/**
 * Several instances (REDIS_URL): every PUBLISH_MS each one writes its figures into one Redis
 * hash (a field per instance; the hash expires when nobody writes any more) and reads back the
 * others'. Status requests then answer from what was read last, so polling pages cost Redis
 * nothing. An instance that stops publishing drops out after STALE_MS (its field is deleted by
 * whoever sees it stale); one that shuts down removes its own field at once. Staleness compares
 * the writer's clock with the reader's: instances' clocks are assumed to agree within seconds (NTP).
 */
import type { RedisLink } from '../fanout/redis-link.js';
import type { InstanceFigures } from './instance.js';

export const PUBLISH_MS = 2000;
/** Longer than a few missed publishes, so a busy event loop does not make an instance flicker. */
export const STALE_MS = 15_000;
/** Instances read per round (and shown); a cluster is far smaller. */
export const MAX_INSTANCES = 64;
const STOP_WAIT_MS = 1000;
/** One instance's figures are about 1 KB; anything far larger is not ours. */
const MAX_FIELD_BYTES = 32 * 1024;

export interface ClusterRead {
  /** the other live instances, by id */
  peers: InstanceFigures[];
  /** false when Redis could not be read: only this instance is known */
  complete: boolean;
}

export class ClusterStatus {
  private last: ClusterRead = { peers: [], complete: true };
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly link: RedisLink,
    private readonly key: string,
    private readonly self: () => Promise<InstanceFigures>,
  ) {}

  start(): void {
    if (this.timer || this.stopped) return;
    const tick = (): void => {
      // A slow Redis must not pile rounds up.
      if (this.inFlight || this.stopped) return;
      this.inFlight = this.round().finally(() => (this.inFlight = undefined));
    };
    tick();
    this.timer = setInterval(tick, PUBLISH_MS);
    this.timer.unref();
  }

  /** On shutdown: stops publishing and removes this instance's field at once instead of after STALE_MS. */
  async stop(id: string): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // Bounded: a Redis that stopped answering must not hold up the shutdown; its field then expires.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((done) => (timer = setTimeout(done, STOP_WAIT_MS)));
    await Promise.race([(this.inFlight ?? Promise.resolve()).then(() => this.link.hashDelete(this.key, [id])).catch(() => undefined), bound]);
    clearTimeout(timer);
  }

  /** The other instances as of the last round. */
  read(): ClusterRead {
    return this.last;
  }

  /** Publishes this instance's figures and reads the others'; never throws (a failed round leaves `complete` false). */
  async round(now = Date.now()): Promise<void> {
    try {
      const mine = await this.self();
      await this.link.hashPut(this.key, mine.id, JSON.stringify(mine), STALE_MS);
      const fields = await this.link.hashSample(this.key, MAX_INSTANCES + 1);
      const peers: InstanceFigures[] = [];
      const stale: string[] = [];
      for (const [id, value] of fields) {
        if (id === mine.id) continue;
        const figures = value.length <= MAX_FIELD_BYTES ? parseFigures(value) : null;
        if (!figures || figures.id !== id || now - figures.at > STALE_MS) stale.push(id);
        else peers.push(figures);
      }
      await this.link.hashDelete(this.key, stale);
      peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.last = { peers: peers.slice(0, MAX_INSTANCES - 1), complete: true };
    } catch {
      // Redis errors are counted and logged by the link; the page says the view is partial.
      this.last = { peers: [], complete: false };
    }
  }
}

/** Another instance's figures, or null when the JSON does not have their shape. */
export function parseFigures(json: string): InstanceFigures | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isObject(v) || typeof v['id'] !== 'string' || !isNumber(v['at'])) return null;
  const endpoints = v['endpoints'];
  if (!isObject(endpoints) || !['signal', 'relay', 'sealed'].every((k) => isPair(endpoints[k]))) return null;
  const rates = v['rates'];
  if (!isObject(rates) || !['relayUpdates', 'signalingMessages', 'sealedEnvelopes'].every((k) => isNumber(rates[k]))) return null;
  const commit = v['commit'];
  if (!isObject(commit) || !isNumber(commit['count']) || !isCounts(commit['buckets'])) return null;
  const storage = v['storage'];
  if (!isObject(storage) || typeof storage['engine'] !== 'string' || !(storage['bytes'] === null || isNumber(storage['bytes']))) return null;
  if (!isCounts(v['refusals']) || !isCounts(v['errors'])) return null;
  if (!['refusalsTotal', 'errorsTotal', 'webhookBacklog', 'uptimeSeconds', 'pid'].every((k) => isNumber(v[k]))) return null;
  return v as unknown as InstanceFigures;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isPair(v: unknown): boolean {
  return isObject(v) && isNumber(v['rooms']) && isNumber(v['connections']);
}

function isCounts(v: unknown): boolean {
  return isObject(v) && Object.values(v).every(isNumber);
}
