/**
 * SyncProvider: one Yjs document synced WebRTC-first through WS /signal, with WS /relay/<room>
 * as fallback and mailbox. Composes the stock y-webrtc and y-websocket providers around one
 * Awareness; see README.md ("Policy") for when each transport runs.
 */
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { ObservableV2 } from 'lib0/observable';
import { defaultRoomPolicy, parseRoomName } from '@sync-suite/shared';
import { CredentialsKeeper } from './credentials.js';
import { endpointsFor, withPath, withQuery, type Endpoints } from './endpoints.js';
import type { IceServerConfig } from './ice-servers.js';
import type { SyncProviderError, SyncProviderEvents, SyncProviderOptions } from './options.js';
import { PendingTracker } from './pending.js';
import { confirmedSnapshot, unconfirmedSince } from './pending-restore.js';
import { PolicyTimer } from './policy-timer.js';
import { decideRelay, type PolicyInput } from './relay-policy.js';
import { RelayTransport } from './relay-transport.js';
import { decodeProgress, encodeProgress, resumeFrom, SEALED_META, type SealedProgress } from './sealed/progress.js';
import { carryLimits } from './sealed/carried.js';
import { SealedTransport } from './sealed/transport.js';
import { sealedWebrtcPassword } from './sealed/webrtc-password.js';
import { sameStatus, statusOf, type StatusEvent, type SyncStatus } from './status.js';
import { WEBRTC_MAX_AWARENESS_BYTES, WebrtcTransport } from './webrtc-transport.js';

/** persistence meta key: unconfirmed local changes (a decimal string) */
const PENDING_META = 'sync-suite:pending';
const encodeCount = (n: number): Uint8Array => new TextEncoder().encode(String(n));
const decodeCount = (value: Uint8Array | undefined): number => (value ? Number(new TextDecoder().decode(value)) || 0 : 0);
/**
 * persistence meta key: a Yjs snapshot (state vector and deletions) of the document when nothing
 * was pending. The count above is written after the update it counts, so a kill or a reload can
 * lose it; a stored document that differs from this snapshot has at least one unconfirmed change
 * (pending-restore.ts).
 */
const CONFIRMED_META = 'sync-suite:confirmed';

const DEFAULTS = { relayGraceMs: 3_000, relayHoldMs: 15_000, peerSyncTimeoutMs: 10_000, webrtcMaxAwarenessBytes: WEBRTC_MAX_AWARENESS_BYTES, tokenRefreshMarginMs: 60_000, credentialsTimeoutMs: 5_000 };

export class SyncProvider extends ObservableV2<SyncProviderEvents> {
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  readonly room: string;
  /** the underlying stock providers, once started (for inspection; do not connect them yourself) */
  webrtc: WebrtcTransport | undefined;
  relay: RelayTransport | undefined;
  /** the relay path of a sealed room (`sealed` option), instead of `relay` */
  sealedRelay: SealedTransport | undefined;

  private readonly opts: SyncProviderOptions & typeof DEFAULTS;
  private readonly endpoints: Endpoints;
  private readonly WebSocketImpl: unknown;
  private readonly ownsAwareness: boolean;
  private readonly credentials: CredentialsKeeper;
  private destroyed = false;
  private relayWanted = false;
  private lostLastPeer = false;
  private prevSyncedPeers = 0;
  private readonly grace = new PolicyTimer(() => this.opts.relayGraceMs, () => this.onChange());
  private readonly hold = new PolicyTimer(() => this.opts.relayHoldMs, () => this.onChange());
  private lastStatus: StatusEvent | undefined;
  private lastSynced = false;
  private iceServers: IceServerConfig[] = [];
  private readonly pending: PendingTracker;
  private persistenceOpen = false;
  /** getToken() failed before the transports started (credentials.first() retries it) */
  private tokenFailedAtStart = false;
  /** a sealed room's progress stored by the last session */
  private sealedResume: SealedProgress | undefined;
  /** y-webrtc's password: in a sealed room derived from the room key (sealed/webrtc-password.ts) */
  private readonly webrtcPassword: string | undefined;

  constructor(doc: Y.Doc, options: SyncProviderOptions) {
    super();
    this.opts = { ...DEFAULTS, ...dropUndefined(options) };
    const parsed = parseRoomName(options.room, options.roomPolicy ?? defaultRoomPolicy);
    if (!parsed.ok) throw new RangeError(`SyncProvider: invalid room name ${JSON.stringify(options.room)}: ${parsed.reason}`);
    this.endpoints = endpointsFor(options.serverUrl);
    // A sealed room never runs y-webrtc without a password: signaling in the clear would let any
    // token holder (or whoever runs /signal) meet this device peer to peer and sync in plaintext.
    this.webrtcPassword = options.sealed ? sealedWebrtcPassword(options.room, options.sealed.key, options.password ?? '') : options.password || undefined;
    // a bad carry bound throws here, with a bad key, not later when the sealed relay starts
    if (options.sealed) carryLimits(options.sealed.carry);
    this.WebSocketImpl = resolveWebSocket(options.WebSocket);
    this.doc = doc;
    this.room = options.room;
    this.ownsAwareness = !options.awareness;
    this.awareness = options.awareness ?? new Awareness(doc);
    this.awareness.on('change', this.onChange);
    this.pending = new PendingTracker(doc, (n) => this.pendingChanged(n));
    this.credentials = new CredentialsKeeper({
      getToken: this.getToken,
      httpBase: this.endpoints.http,
      fetch: options.fetch,
      timeoutMs: this.opts.credentialsTimeoutMs,
      marginMs: this.opts.tokenRefreshMarginMs,
      fallback: options.iceServers ?? [],
      onIceServers: (servers) => this.setIceServers(servers),
      onError: (source, err) => {
        // before any transport exists, a failed getToken() is the failed attempt (statusOf)
        if (source === 'token' && !this.webrtc && !this.relayPath) this.tokenFailedAtStart = true;
        this.fail(source, err);
      },
    });
    this.emitStatus();
    this.start().catch((err: unknown) => this.fail('signaling', err));
  }

  get status(): SyncStatus {
    return this.lastStatus?.status ?? 'connecting';
  }

  get synced(): boolean {
    return this.lastSynced;
  }

  /** Resolves once the document is synced over either transport. */
  whenSynced(): Promise<void> {
    if (this.lastSynced) return Promise.resolve();
    return new Promise((done) => {
      const on = (synced: boolean): void => {
        if (!synced) return;
        this.off('synced', on);
        done();
      };
      this.on('synced', on);
    });
  }

  override destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.credentials.close();
    this.grace.dispose();
    this.hold.dispose();
    // WebRTC first: leaving the y-webrtc room clears our awareness state, which the relay then carries.
    this.webrtc?.destroy();
    this.relayPath?.destroy();
    this.pending.destroy();
    // Writes already queued still land; nothing after this is stored.
    this.closed = this.opts.persistence ? this.opts.persistence.close().catch(() => undefined) : Promise.resolve();
    this.awareness.off('change', this.onChange);
    if (this.ownsAwareness) this.awareness.destroy();
    this.emitStatus();
    super.destroy();
  }

  /**
   * After destroy(): resolves once the persistence has written what was queued (a whole-document
   * rewrite after a failed write included, persistence/update-log.ts and persistence/indexeddb.ts)
   * and closed its store, so an app about to be suspended or killed can wait for it. Never rejects
   * (storage failures are 'error' events). Before destroy(): resolved.
   */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  private closed: Promise<void> = Promise.resolve();

  private readonly getToken = async (): Promise<string | undefined> => {
    if (!this.opts.getToken) return undefined;
    const token = await this.opts.getToken();
    if (typeof token !== 'string' || token.length === 0) throw new TypeError('getToken() must return a non-empty string');
    return token;
  };

  private async start(): Promise<void> {
    await this.loadPersistence();
    if (this.destroyed) return;
    const token = await this.credentials.first();
    if (this.destroyed) return;
    const signalBase = this.opts.signalingUrl ?? withPath(this.endpoints.ws, 'signal');
    // y-webrtc derives its room key with crypto.subtle; without it (Hermes without a polyfill) a
    // password, which a sealed room always has, would fail inside y-webrtc: sync through the relay only.
    if (this.webrtcPassword !== undefined && !globalThis.crypto?.subtle) this.fail('webrtc', new Error('crypto.subtle is missing (y-webrtc needs it for the room password): WebRTC is off, syncing through the relay'));
    else this.webrtc = new WebrtcTransport({
      room: this.room,
      doc: this.doc,
      awareness: this.awareness,
      password: this.webrtcPassword,
      peerOpts: this.peerOpts(this.iceServers),
      maxConns: this.opts.maxConns,
      peerSyncTimeoutMs: this.opts.peerSyncTimeoutMs,
      maxAwarenessBytes: this.opts.webrtcMaxAwarenessBytes,
      // `room` keeps each provider's signaling socket its own (y-webrtc shares sockets by URL).
      signalingUrl: (t) => withQuery(signalBase, { room: this.room, token: t }),
      firstToken: token,
      getToken: this.getToken,
      onChange: this.onChange,
      onTokenError: (err) => this.fail('token', err),
      onRefused: ({ code, reason }) => this.emit('error', [{ source: 'signaling', message: reason || 'refused', code }]),
      onDropped: (source, message) => this.fail(source, new Error(message)),
      pending: this.pending,
      tokenRefreshMarginMs: this.opts.tokenRefreshMarginMs,
    });
    if (this.opts.sealed) this.sealedRelay = this.startSealed(this.opts.sealed);
    else this.relay = new RelayTransport({
      relayBase: withPath(this.endpoints.ws, 'relay'),
      room: this.room,
      doc: this.doc,
      awareness: this.awareness,
      WebSocket: this.WebSocketImpl,
      getToken: this.getToken,
      onChange: this.onChange,
      onTokenError: (err) => this.fail('token', err),
      onRefused: ({ code, reason }) => this.emit('error', [{ source: 'relay', message: reason || 'refused', ...(code ? { code } : {}) }]),
      pending: this.pending,
      tokenRefreshMarginMs: this.opts.tokenRefreshMarginMs,
      carriedElsewhere: this.carriedElsewhere,
    });
    this.onChange();
  }

  /** a WebRTC peer still carries this awareness client (the relay paths keep its state: relay-presence.ts) */
  private readonly carriedElsewhere = (client: number): boolean => !!this.webrtc?.carries(client);

  private startSealed(sealed: NonNullable<SyncProviderOptions['sealed']>): SealedTransport {
    return new SealedTransport({
      sealedBase: withPath(this.endpoints.ws, 'sealed'),
      room: this.room,
      doc: this.doc,
      awareness: this.awareness,
      key: sealed.key,
      ...(sealed.previousKeys ? { previousKeys: sealed.previousKeys } : {}),
      ...(sealed.mergeMs !== undefined ? { mergeMs: sealed.mergeMs } : {}),
      ...(sealed.maxMessageBytes !== undefined ? { maxMessageBytes: sealed.maxMessageBytes } : {}),
      ...(sealed.carry ? { carry: sealed.carry } : {}),
      WebSocket: this.WebSocketImpl,
      getToken: this.getToken,
      onChange: this.onChange,
      onTokenError: (err) => this.fail('token', err),
      onRefused: ({ code, reason }) => this.emit('error', [{ source: 'relay', message: reason || 'refused', ...(code ? { code } : {}) }]),
      onSealedError: (message) => this.fail('sealed', new Error(message)),
      pending: this.pending,
      tokenRefreshMarginMs: this.opts.tokenRefreshMarginMs,
      carriedElsewhere: this.carriedElsewhere,
      ...(this.sealedResume ? { resume: this.sealedResume } : {}),
      ...(this.persistenceOpen ? { onProgress: (p: SealedProgress) => this.storeMeta(SEALED_META, encodeProgress(p)) } : {}),
    });
  }

  private storeMeta(key: string, value: Uint8Array): void {
    if (!this.persistenceOpen) return;
    this.opts.persistence?.setMeta(key, value).catch((err: unknown) => this.fail('persistence', err));
  }

  /** the relay path in use: plain or sealed */
  private get relayPath(): RelayTransport | SealedTransport | undefined {
    return this.relay ?? this.sealedRelay;
  }

  /** The stored document first, so that no socket opens before local edits are in the Y.Doc. */
  private async loadPersistence(): Promise<void> {
    const persistence = this.opts.persistence;
    if (!persistence) return;
    let loadFailed = false;
    try {
      await persistence.open(this.doc, (err) => {
        loadFailed ||= !this.persistenceOpen;
        this.fail('persistence', err);
      });
      this.pending.restore(decodeCount(await persistence.getMeta(PENDING_META)));
      this.pending.atLeast(unconfirmedSince(this.doc, await persistence.getMeta(CONFIRMED_META)));
      if (this.opts.sealed) this.sealedResume = resumeFrom(decodeProgress(await persistence.getMeta(SEALED_META)), this.doc, loadFailed);
      this.persistenceOpen = true;
    } catch (err) {
      this.fail('persistence', err);
    }
  }

  /** The count goes to the status, and to persistence: after a restart, unconfirmed edits are still counted. */
  private pendingChanged(n: number): void {
    if (this.persistenceOpen && !this.destroyed) {
      this.storeMeta(PENDING_META, encodeCount(n));
      if (n === 0) this.storeMeta(CONFIRMED_META, confirmedSnapshot(this.doc));
    }
    this.emitStatus();
  }

  private setIceServers(servers: IceServerConfig[]): void {
    this.iceServers = servers;
    this.webrtc?.setPeerOpts(this.peerOpts(servers));
  }

  private peerOpts(iceServers: IceServerConfig[]): Record<string, unknown> {
    const base = this.opts.peerOpts ?? {};
    const config = (base['config'] ?? {}) as Record<string, unknown>;
    return { ...base, config: { ...config, iceServers } };
  }

  private fail(source: SyncProviderError['source'], err: unknown): void {
    if (this.destroyed) return;
    this.emit('error', [{ source, message: err instanceof Error ? err.message : String(err) }]);
    this.onChange();
  }

  /** Re-evaluate the policy and the status after anything changed. */
  private readonly onChange = (): void => {
    if (this.destroyed) return;
    this.applyPolicy();
    this.emitStatus();
  };

  private applyPolicy(): void {
    const { webrtc, relayPath: relay } = this;
    if (!relay) return;
    if (!webrtc) {
      // WebRTC off (start()): the relay is the only path.
      if (!this.relayWanted) {
        this.relayWanted = true;
        relay.connect();
      }
      return;
    }
    const syncedPeers = webrtc.syncedPeers;
    if (syncedPeers > 0) this.lostLastPeer = false;
    else if (this.prevSyncedPeers > 0) this.lostLastPeer = true;
    this.prevSyncedPeers = syncedPeers;
    const input: PolicyInput = {
      relayWanted: this.relayWanted,
      signalingOpen: webrtc.signalingOpen,
      signalingFailed: webrtc.signalingFailed,
      others: webrtc.others,
      syncedPeers,
      lostLastPeer: this.lostLastPeer,
      graceElapsed: this.grace.elapsed,
      holdElapsed: this.hold.elapsed,
    };
    const decision = decideRelay(input);
    this.runTimers(decision.timer);
    if (decision.relay === this.relayWanted) return;
    this.relayWanted = decision.relay;
    this.lostLastPeer = false;
    if (decision.relay) relay.connect();
    else relay.release();
  }

  private runTimers(timer: 'grace' | 'hold' | null): void {
    if (timer !== 'grace') this.grace.stop();
    if (timer !== 'hold') this.hold.stop();
    if (timer === 'grace') this.grace.start();
    if (timer === 'hold') this.hold.start();
  }

  /**
   * Every path tried has failed since a socket was last open. Before the transports exist that is a
   * failed getToken() (an app offline whose backend issues tokens); without WebRTC (no
   * crypto.subtle) the relay alone decides.
   */
  private failedSinceOpen(): boolean {
    const { webrtc, relayPath: relay } = this;
    if (webrtc) return webrtc.signalingFailed && (!this.relayWanted || !!relay?.failed);
    if (relay) return relay.failed;
    return this.tokenFailedAtStart;
  }

  private emitStatus(): void {
    const webrtc = this.webrtc;
    const relay = this.relayPath;
    const syncedWebrtcPeers = this.destroyed ? 0 : (webrtc?.syncedPeers ?? 0);
    const relaySynced = !this.destroyed && !!relay?.open && relay.synced;
    const event: StatusEvent = {
      status: statusOf({
        destroyed: this.destroyed,
        syncedPeers: syncedWebrtcPeers,
        relaySynced,
        signalingOpen: !!webrtc?.signalingOpen,
        relayOpen: !!relay?.open,
        failedSinceOpen: this.failedSinceOpen(),
      }),
      webrtcPeers: this.destroyed ? 0 : (webrtc?.connectedPeers ?? 0),
      syncedWebrtcPeers,
      relay: relaySynced,
      peers: this.destroyed ? 0 : otherAwarenessStates(this.awareness, this.doc.clientID),
      pending: this.pending.pending,
    };
    if (!sameStatus(this.lastStatus, event)) {
      this.lastStatus = event;
      this.emit('status', [event]);
    }
    const synced = event.status === 'webrtc' || event.status === 'relay';
    if (synced !== this.lastSynced) {
      this.lastSynced = synced;
      this.emit('synced', [synced]);
    }
  }
}

function otherAwarenessStates(awareness: Awareness, clientID: number): number {
  let n = 0;
  for (const id of awareness.getStates().keys()) if (id !== clientID) n++;
  return n;
}

function resolveWebSocket(given: unknown): unknown {
  const global = globalThis as { WebSocket?: unknown };
  const impl = given ?? global.WebSocket;
  if (!impl) throw new TypeError('SyncProvider: no WebSocket in this environment; pass options.WebSocket (e.g. the ws package)');
  // y-webrtc's signaling client (lib0/websocket) only uses the global.
  if (!global.WebSocket) global.WebSocket = impl;
  return impl;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
