/** The one status the provider reports, derived from both transports (pure). */

export type SyncStatus = 'offline' | 'connecting' | 'webrtc' | 'relay';

export interface StatusEvent {
  status: SyncStatus;
  /** WebRTC peers with an open data channel */
  webrtcPeers: number;
  /** of those, the ones our document has synced with */
  syncedWebrtcPeers: number;
  /** the relay socket is open and synced */
  relay: boolean;
  /** other devices present in awareness, over either transport */
  peers: number;
  /** local changes no peer and no relay has confirmed yet (0: everything edited here is held elsewhere too) */
  pending: number;
}

export interface StatusInput {
  destroyed: boolean;
  syncedPeers: number;
  relaySynced: boolean;
  signalingOpen: boolean;
  relayOpen: boolean;
  /** some attempt failed since a socket was last open (before that we are still connecting) */
  failedSinceOpen: boolean;
}

export function statusOf(i: StatusInput): SyncStatus {
  if (i.destroyed) return 'offline';
  if (i.syncedPeers > 0) return 'webrtc';
  if (i.relaySynced) return 'relay';
  if (i.signalingOpen || i.relayOpen || !i.failedSinceOpen) return 'connecting';
  return 'offline';
}

export function sameStatus(a: StatusEvent | undefined, b: StatusEvent): boolean {
  return !!a && a.status === b.status && a.webrtcPeers === b.webrtcPeers && a.syncedWebrtcPeers === b.syncedWebrtcPeers && a.relay === b.relay && a.peers === b.peers && a.pending === b.pending;
}
