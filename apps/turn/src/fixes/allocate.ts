/**
 * Allocate, around node-turn's handler. Fixes: quotas (its checkQuota is a TODO); the
 * requested LIFETIME (it reads a misspelt attribute); REQUESTED-ADDRESS-FAMILY; EVEN-PORT and
 * RESERVATION-TOKEN (see relay-ports.ts); a second Allocate on a live 5-tuple (it never looks
 * the allocation up, so it replaced and leaked the first instead of answering 437), or on one whose
 * first Allocate is still binding its relay port (both were granted: the first was then out of
 * reach of any Refresh, holding its port and quota slot for its whole lifetime).
 */
import type { Socket } from 'node:dgram';
import { parseTurnUsername } from '@sync-suite/shared/node';
import { Attribute, type NtMessage, type MethodListener } from '../node-turn.js';
import { ATTR } from '../stun/codec.js';
import type { TurnContext } from '../context.js';
import { loggedUsername } from '../log-budget.js';
import { attributeOfType } from './attributes.js';
import { signReply, wrapListeners } from './wrap.js';

const reservedSocket = new WeakMap<NtMessage, Socket>();
const issuedToken = new WeakMap<NtMessage, string>();

export function fixAllocate(ctx: TurnContext): void {
  const { server, ports } = ctx;
  /** 5-tuple -> transaction ID of the Allocate being processed there (its relay port is bound asynchronously) */
  const inFlight = new Map<string, string>();
  server.allocate.allocateUdp = async (msg) => [reservedSocket.get(msg) ?? (await ports.bindAny())];
  server.allocate.allocateUdpEven = async (msg, reserveNext) => {
    const { socket, token } = await ports.bindEven(reserveNext);
    if (token) issuedToken.set(msg, token);
    return [socket];
  };
  wrapListeners<MethodListener>(server, 'allocate', (original) => (msg, reply) => {
    signReply(reply);
    const fiveTuple = msg.transport.get5Tuple();
    msg.allocation = server.allocations[fiveTuple] ?? null;
    if (msg.allocation) return original(msg, reply);
    const pending = inFlight.get(fiveTuple);
    // a retransmission of the Allocate in flight gets that one's answer; another Allocate is a mismatch, as once it is done
    if (pending === msg.transactionID) return reply.discard();
    if (pending !== undefined) return reply.reject(437, 'Allocation Mismatch');
    inFlight.set(fiveTuple, msg.transactionID);
    const resolve = reply.resolve.bind(reply);
    const reject = reply.reject.bind(reply);
    const done = () => {
      if (inFlight.get(fiveTuple) === msg.transactionID) inFlight.delete(fiveTuple);
    };
    reply.resolve = () => {
      done();
      resolve();
    };
    reply.reject = (code, reason) => {
      done();
      reject(code, reason);
    };
    try {
      newAllocation(ctx, msg, reply, original);
    } catch (err) {
      done();
      throw err;
    }
  });
}

function newAllocation(ctx: TurnContext, msg: NtMessage, reply: NtMessage, original: MethodListener): void {
  const username = msg.user?.username ?? '';
  // per user, not per credential: a fresh credential for the same sub takes from the same quota
  const quotaKey = parseTurnUsername(username)?.sub ?? username;
  const family = attributeOfType(msg.attributes, ATTR.REQUESTED_ADDRESS_FAMILY)?.value;
  if (family !== undefined && family !== ctx.relayFamily) return refuse(ctx, reply, username, 440, 'Address Family not Supported');
  const full = ctx.quotas.take(quotaKey);
  if (full) {
    ctx.metrics.quotaRejections.inc({ quota: full });
    return refuse(ctx, reply, username, 486, 'Allocation Quota Reached', { quota: full });
  }
  // EVEN-PORT with R: the N+1 port is held until claimed, its 30 s pass, or this allocation ends
  if (attributeOfType(msg.attributes, ATTR.EVEN_PORT)?.value === true && ctx.ports.reservationsFull) {
    ctx.quotas.give(quotaKey);
    ctx.metrics.capacityRejections.inc({ limit: 'reservations' });
    return refuse(ctx, reply, username, 508, 'Insufficient Capacity', { limit: 'reservations' });
  }
  const outcome = claimReservation(ctx, msg);
  if (outcome !== 'ok') {
    ctx.quotas.give(quotaKey);
    return outcome === 'conflict' ? refuse(ctx, reply, username, 400, 'Bad Request') : refuse(ctx, reply, username, 508, 'Insufficient Capacity');
  }
  settleOnce(ctx, msg, reply, username, quotaKey);
  original(msg, reply);
}

/** RESERVATION-TOKEN: hand node-turn the reserved socket instead of its broken lookup. */
function claimReservation(ctx: TurnContext, msg: NtMessage): 'ok' | 'conflict' | 'unknown' {
  const token = attributeOfType(msg.attributes, ATTR.RESERVATION_TOKEN);
  if (!token) return 'ok';
  if (attributeOfType(msg.attributes, ATTR.EVEN_PORT)) return 'conflict';
  const socket = ctx.ports.take(String(token.value));
  if (!socket) return 'unknown';
  reservedSocket.set(msg, socket);
  msg.attributes = msg.attributes.filter((a) => a !== token);
  return 'ok';
}

/** Track the allocation on success, give back the quota slot on failure. */
function settleOnce(ctx: TurnContext, msg: NtMessage, reply: NtMessage, username: string, quotaKey: string): void {
  const resolve = reply.resolve.bind(reply);
  const reject = reply.reject.bind(reply);
  let settled = false;
  reply.resolve = () => {
    if (!settled && msg.allocation) {
      settled = true;
      const lifetime = ctx.lifetime.seconds(msg.getAttribute('lifetime') as number | undefined);
      const attr = attributeOfType(reply.attributes, ATTR.LIFETIME);
      if (attr) attr.value = lifetime;
      const token = issuedToken.get(msg);
      if (token) insertBeforeIntegrity(reply, new Attribute(reply, 'reservation-token', token));
      // a reservation lives no longer than the allocation that made it: quota and Refresh 0 bound it
      ctx.registry.track(msg.allocation, username, quotaKey, lifetime, token ? () => ctx.ports.take(token)?.close() : undefined);
    }
    resolve();
  };
  reply.reject = (code, reason) => {
    if (!settled) {
      settled = true;
      ctx.quotas.give(quotaKey);
      reservedSocket.get(msg)?.close();
      const token = issuedToken.get(msg);
      if (token) ctx.ports.take(token)?.close();
      ctx.logBudget.warn('allocation refused', { username: loggedUsername(username), code, reason });
    }
    reject(code, reason);
  };
}

function insertBeforeIntegrity(reply: NtMessage, attr: InstanceType<typeof Attribute>): void {
  const at = reply.attributes.findIndex((a) => a.type === ATTR.MESSAGE_INTEGRITY);
  reply.attributes.splice(at < 0 ? reply.attributes.length : at, 0, attr);
  reply.length += 4 + attr.length + attr.padding;
}

function refuse(ctx: TurnContext, reply: NtMessage, username: string, code: number, reason: string, extra: object = {}): void {
  ctx.logBudget.warn('allocation refused', { username: loggedUsername(username), code, reason, ...extra });
  reply.reject(code, reason);
}
