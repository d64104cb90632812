/**
 * When the relay should be connected: a pure decision over what the provider knows, so the
 * policy can be tested as a table (README "Policy" describes it; the provider runs the timers).
 *
 * - WebRTC first. The relay connects when some other device is not reached over WebRTC:
 *   at once when signaling failed, when we are alone on the topic (the relay is the mailbox),
 *   or when we just lost our last WebRTC peer; otherwise after the grace period.
 * - Once every known device is reached over WebRTC and synced, the relay is released after
 *   the hold time.
 */

export interface PolicyInput {
  /** the relay is currently wanted (connected or connecting) */
  relayWanted: boolean;
  signalingOpen: boolean;
  /** a signaling attempt failed or the socket closed, and it has not reopened since */
  signalingFailed: boolean;
  /** other devices subscribed to the room's signaling topic (our own tabs excluded), if known */
  others: number | undefined;
  /** WebRTC peers connected and synced */
  syncedPeers: number;
  /** the last synced WebRTC peer went away and the relay has not been wanted since */
  lostLastPeer: boolean;
  graceElapsed: boolean;
  holdElapsed: boolean;
}

export interface RelayDecision {
  relay: boolean;
  /** the timer that must be running for the decision to change by itself */
  timer: 'grace' | 'hold' | null;
}

/** Every other device we know of is reached over WebRTC. */
export function peersCovered(i: PolicyInput): boolean {
  if (!i.signalingOpen || i.syncedPeers === 0) return false;
  return i.others === undefined || i.syncedPeers >= i.others;
}

export function decideRelay(i: PolicyInput): RelayDecision {
  const covered = peersCovered(i);
  if (i.relayWanted) {
    if (!covered) return { relay: true, timer: null };
    return i.holdElapsed ? { relay: false, timer: null } : { relay: true, timer: 'hold' };
  }
  if (covered) return { relay: false, timer: null };
  const urgent = (!i.signalingOpen && i.signalingFailed) || i.others === 0 || i.lostLastPeer;
  if (urgent || i.graceElapsed) return { relay: true, timer: null };
  return { relay: false, timer: 'grace' };
}
