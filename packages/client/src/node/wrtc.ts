/** What simple-peer reads from its `wrtc` option (y-webrtc's `peerOpts.wrtc`). */
export interface Wrtc {
  RTCPeerConnection: typeof globalThis.RTCPeerConnection;
  RTCSessionDescription: typeof globalThis.RTCSessionDescription;
  RTCIceCandidate: typeof globalThis.RTCIceCandidate;
}
