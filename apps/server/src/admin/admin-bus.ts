/**
 * Admin operations across instances over Redis pub/sub: one channel, an AdminRequest carrying
 * the operation and an id, and one AdminReply per other instance with the sockets it closed (and,
 * for a `connections` request, its socket count per room asked).
 * PUBLISH answers how many subscribers got the request, so the sender knows how many replies to
 * wait for (bounded by REPLY_TIMEOUT_MS: an instance that does not answer is not counted).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { BusKind, readBusFrame, writeBusFrame } from '../fanout/bus-frame.js';
import type { RedisLink } from '../fanout/redis-link.js';
import type { AdminAnswer, AdminOp, AdminOutcome, AdminTransport } from './hub.js';

const REPLY_TIMEOUT_MS = 1500;
/**
 * Admin frames are JSON; the largest is a `connections` request for one page of GET /admin/rooms
 * (at most 1000 names of at most 255 characters, routes/admin/rooms.ts). Anything larger is not ours.
 */
const MAX_FRAME_BYTES = 512 * 1024;
/** as many counts as a request can name rooms */
const MAX_ROOMS = 1000;

interface Waiting {
  expected: number;
  closed: number;
  counts: number[];
  answered: number;
  done(): void;
}

export class AdminBus implements AdminTransport {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly link: RedisLink,
    private readonly channel: string,
    private readonly handle: (op: AdminOp) => Promise<AdminAnswer>,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): Promise<void> {
    return this.link.subscribe(this.channel, (m) => this.received(m));
  }

  async broadcast(op: AdminOp): Promise<AdminOutcome> {
    const id = randomUUID();
    let finish = (): void => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const counts = op.op === 'connections' ? op.rooms.map(() => 0) : [];
    const w: Waiting = { expected: Infinity, closed: 0, counts, answered: 0, done: finish };
    this.waiting.set(id, w);
    const timer = setTimeout(finish, REPLY_TIMEOUT_MS);
    try {
      const receivers = await this.link.publishCounted(this.channel, this.frame(BusKind.AdminRequest, { id, ...op }));
      w.expected = Math.max(0, receivers - 1); // our own subscriber got it too
      if (w.answered >= w.expected) finish();
      await finished;
      if (w.answered < w.expected) this.log.warn({ op: op.op, expected: w.expected, answered: w.answered }, 'admin operation: some instances did not answer');
      return { closed: w.closed, instances: w.answered, counts: w.counts };
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
  }

  private frame(kind: BusKind, body: unknown): Buffer {
    return writeBusFrame(kind, this.link.instance, Buffer.from(JSON.stringify(body)));
  }

  private received(message: Buffer): void {
    if (message.length > MAX_FRAME_BYTES) return;
    const read = readBusFrame(message);
    if (!read.ok || read.frame.instance.equals(this.link.instance)) return;
    let body: unknown;
    try {
      body = JSON.parse(read.frame.payload.toString('utf8'));
    } catch {
      return this.log.warn('malformed admin bus frame dropped');
    }
    if (read.frame.kind === BusKind.AdminRequest) this.request(body);
    else if (read.frame.kind === BusKind.AdminReply) this.reply(body);
  }

  private request(body: unknown): void {
    const req = body as { id?: unknown } & Partial<AdminOp>;
    const id = req.id;
    if (typeof id !== 'string' || !isAdminOp(req)) return this.log.warn('malformed admin request dropped');
    void this.handle(req)
      .then((answer) => ({ id, ...answer }))
      .catch((err: unknown) => {
        this.log.error({ err, op: req.op }, 'admin operation from another instance failed');
        return { id, closed: 0 };
      })
      .then((reply) => this.link.publish(this.channel, this.frame(BusKind.AdminReply, reply)));
  }

  private reply(body: unknown): void {
    const r = body as { id?: unknown; closed?: unknown; counts?: unknown };
    if (typeof r.id !== 'string' || typeof r.closed !== 'number') return;
    const w = this.waiting.get(r.id);
    if (!w) return;
    w.answered++;
    w.closed += r.closed;
    if (Array.isArray(r.counts) && r.counts.length === w.counts.length) {
      r.counts.forEach((n: unknown, i) => {
        if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) w.counts[i] = (w.counts[i] ?? 0) + n;
      });
    }
    if (w.answered >= w.expected) w.done();
  }
}

function isAdminOp(v: Partial<AdminOp>): v is AdminOp {
  if (v.op === 'delete') return typeof v.room === 'string' && (v.relayGeneration === undefined || (Number.isSafeInteger(v.relayGeneration) && v.relayGeneration >= 0));
  if (v.op === 'connections') return Array.isArray(v.rooms) && v.rooms.length <= MAX_ROOMS && v.rooms.every((r) => typeof r === 'string');
  if (v.op === 'revoke') return typeof v.revocation === 'object' && v.revocation !== null && typeof v.revocation.until === 'number';
  return false;
}
