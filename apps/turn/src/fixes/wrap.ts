/** Replacing node-turn's event listeners with wrappers that can run before, after or instead. */
import type { EventEmitter } from 'node:events';
import type { NtMessage } from '../node-turn.js';
import { ATTR } from '../stun/codec.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

export function wrapListeners<L extends Listener>(emitter: EventEmitter, event: string, wrap: (original: L) => L): void {
  const originals = emitter.listeners(event) as L[];
  emitter.removeAllListeners(event);
  const original = ((...args: Parameters<L>) => {
    for (const listener of originals) listener.apply(emitter, args);
  }) as L;
  emitter.on(event, wrap(original));
}

/**
 * Fix: node-turn signs only some responses. ChannelBind success and every error after
 * authentication go out without MESSAGE-INTEGRITY, and strict clients (libwebrtc) drop them.
 * Add it just before serialization, after node-turn has added its own attributes.
 */
export function signReply(reply: NtMessage): void {
  const toBuffer = reply.toBuffer.bind(reply);
  reply.toBuffer = () => {
    if (reply.user && !reply.attributes.some((a) => a.type === ATTR.MESSAGE_INTEGRITY)) reply.addAttribute('message-integrity');
    return toBuffer();
  };
}
