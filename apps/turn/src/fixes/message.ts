/**
 * Before node-turn's dispatch: answer 420 (with UNKNOWN-ATTRIBUTES) for comprehension-required
 * attributes we do not understand, as RFC 5389 section 7.3.1 asks; and swap its nonces (an
 * hour-long timer per 401) for stateless ones.
 */
import type { NtMessage } from '../node-turn.js';
import { UNDERSTOOD_ATTRIBUTES, isComprehensionRequired } from '../stun/codec.js';
import { StatelessNonces } from '../nonces.js';
import type { TurnContext } from '../context.js';
import { wrapListeners } from './wrap.js';

const REQUEST = 0x00;
/** coturn's default stale-nonce time */
const NONCE_LIFETIME_MS = 600_000;

export function fixMessageDispatch(ctx: TurnContext): void {
  wrapListeners<(msg: NtMessage) => void>(ctx.server, 'message', (original) => (msg) => {
    if (msg.class === REQUEST) ctx.metrics.requests.inc({ method: msg.getMethodName() });
    const unknown = msg.attributes.find((a) => isComprehensionRequired(a.type) && !UNDERSTOOD_ATTRIBUTES.has(a.type));
    if (!unknown) return original(msg);
    const reply = msg.reply();
    if (msg.class !== REQUEST) return reply.discard();
    reply.addAttribute('unknown-attributes', unknown.type);
    reply.reject(420, 'Unknown Attribute');
  });
  const nonces = new StatelessNonces(NONCE_LIFETIME_MS);
  ctx.server.authentification.generateNonce = () => nonces.issue();
  ctx.server.authentification.checkNonce = (nonce) => nonces.valid(nonce);
}
