/**
 * The relay side: a stock y-websocket WebsocketProvider on WS /relay/<room>, connected only
 * when the policy wants it, with a fresh token for every connection attempt (TokenGate).
 */
import type * as Y from 'yjs';
import type { Awareness } from 'y-protocols/awareness';
import { readAuthMessage } from 'y-protocols/auth';
import { WebsocketProvider } from 'y-websocket';
import { CloseCode, RelayMessageType } from '@sync-suite/shared';
import * as decoding from 'lib0/decoding';
import { messageYjsSyncStep1, messageYjsSyncStep2 } from 'y-protocols/sync';
import type { PendingChannel, PendingTracker } from './pending.js';
import { CLOSE_TOO_BIG, refusesContent, refusesToken } from './attempt-pacer.js';
import { keepLivePresenceOnClose } from './relay-presence.js';
import { ROOM_DELETED_MESSAGE } from './room-deleted.js';
import { syncStep1Frame } from './sync-step.js';
import { TokenGate } from './token-gate.js';
import { withPath, withQuery } from './endpoints.js';
import { tokenIsReadOnly } from './token-expiry.js';
import { syncFrameFault, syncMessageRefusal } from './update-screen.js';

export interface RelayClose {
  code: number;
  reason: string;
}

export interface RelayTransportOptions {
  relayBase: string;
  room: string;
  doc: Y.Doc;
  awareness: Awareness;
  WebSocket: unknown;
  getToken: () => Promise<string | undefined>;
  onChange: () => void;
  onTokenError: (err: unknown) => void;
  /** the server refused or closed the relay socket with a 4xxx code, or denied permission */
  onRefused: (close: RelayClose) => void;
  /** counts what the relay confirmed */
  pending: PendingTracker;
  /** reconnect with a fresh token this long before the token expires (at most half its life) */
  tokenRefreshMarginMs: number;
  /** a WebRTC peer still carries this awareness client: its state stays when the relay socket closes */
  carriedElsewhere: (client: number) => boolean;
}

const TOO_BIG_MESSAGE =
  "message too big (1009): the relay refused a frame over its RELAY_MAX_MESSAGE_BYTES; the relay path retries after the back-off and is refused while what it lacks is over the limit (WebRTC peers still sync); reported once until the relay accepts the document or a relay socket closes another way";
/** 4413 (cost limit) and 4507 (room quota): the server's reason, then what the client does */
const refusedMessage = (code: number, reason: string): string =>
  `${reason || 'refused'} (${code}): the relay refused what this device sends; the relay path retries after the back-off and is refused while the document holds it (WebRTC peers still sync); reported once until the relay accepts the document or a relay socket closes another way`;

/** RFC 6455 "protocol error": the close this client makes of a relay socket that sent a broken frame (protocolError) */
const CLOSE_PROTOCOL_ERROR = 1002;
const protocolMessage = (fault: string): string =>
  `protocol error: the relay sent ${fault}; the relay socket is closed and reopened after the back-off (WebRTC peers still sync); reported once until the relay accepts the document or a relay socket closes another way`;

/** how long a planned swap may keep reporting the relay as synced while the next socket syncs */
const SWAP_GRACE_MS = 10_000;

export class RelayTransport {
  readonly provider: WebsocketProvider;
  /** an attempt failed or the socket closed since it was last open */
  failed = false;
  /** the server deleted the room (4410): the relay path never connects again */
  deleted = false;
  private wanted = false;
  private readonly gate: TokenGate;
  private channel: PendingChannel | undefined;
  /** the socket being opened carries a read-scope token: the server drops its updates */
  private readOnly = false;
  /** set while a socket is swapped for one with a fresh token (until it synced, or SWAP_GRACE_MS) */
  private swapTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onChange: () => void;
  private readonly opts: RelayTransportOptions;
  /** content refusals (1009, 4413, 4507) and protocol errors (1002) reported in the current run: each code once */
  private readonly refusalsReported = new Set<number>();
  /** the relay refused content (or broke the protocol) and has not been seen accepting the document since */
  private refusedSinceAccepted = false;
  /** set while protocolError runs y-websocket's close handling: that close does not end the run */
  private protocolClosing = false;
  /** on the current socket: sync step 2s heard, and whether the proof step 1 (see watchSync) went out */
  private step2Heard = 0;
  private proofSent = false;
  /** a frame from the relay was dropped (screenFrames) and reported on the current socket */
  private dropReported = false;

  constructor(opts: RelayTransportOptions) {
    this.opts = opts;
    const url = withPath(opts.relayBase, opts.room);
    this.provider = new WebsocketProvider(opts.relayBase, opts.room, opts.doc, {
      connect: false,
      awareness: opts.awareness,
      // Tabs of one app already share edits through y-webrtc's BroadcastChannel.
      disableBc: true,
      WebSocketPolyfill: opts.WebSocket as typeof WebSocket,
      // 4401/4403 may be fixed by the next token, 4409/4429 by waiting; 4400 by nothing; after
      // 4410 (room deleted) reconnecting would upload the deleted document again.
      shouldReconnect: (event) => event.code !== CloseCode.BadRequest && event.code !== CloseCode.RoomDeleted,
    });
    // The stock handler prints the URL, which carries the token: report the reason instead.
    this.provider.messageHandlers[RelayMessageType.Auth] = (_encoder, decoder, provider) => {
      readAuthMessage(decoder, provider.doc, (_doc, reason) => opts.onRefused({ code: 0, reason }));
    };
    keepLivePresenceOnClose(this.provider, opts.carriedElsewhere);
    this.onChange = opts.onChange;
    this.gate = new TokenGate(
      this.provider,
      {
        getToken: opts.getToken,
        url: (token) => {
          // read right before the socket is made with it
          this.readOnly = tokenIsReadOnly(token);
          return withQuery(url, { token });
        },
        onTokenError: opts.onTokenError,
        path: 'relay',
        refresh: { marginMs: opts.tokenRefreshMarginMs, onDue: () => this.swapSocket() },
      },
      false,
    );
    this.watchSync();
    this.provider.on('status', ({ status }) => {
      // setupWS has just made the socket and set its handlers (node_modules/y-websocket/src/y-websocket.js)
      if (status === 'connecting') this.screenFrames();
      if (status === 'connected') {
        this.failed = false;
        this.dropReported = false;
        this.step2Heard = 0;
        this.proofSent = false;
        this.channel?.close();
        const ws = this.provider.ws;
        // A read-scope socket's sync step 2 does not mean the relay holds our changes (it drops
        // them): such a socket confirms nothing (`pending`).
        this.channel = this.readOnly ? undefined : opts.pending.open((frame) => ws?.send(frame));
      }
      opts.onChange();
    });
    this.provider.on('sync', (synced: boolean) => {
      // The relay answered our sync step 1: it accepted this socket (token, room, limits).
      if (synced) {
        this.gate.succeeded();
        this.endSwap();
      }
      opts.onChange();
    });
    this.provider.on('connection-close', (event) => {
      this.channel?.close();
      this.channel = undefined;
      if (this.wanted && this.swapTimer === undefined) this.failed = true;
      if (refusesToken(event?.code)) this.gate.refused();
      if (event && refusesContent(event.code)) this.refusedContent(event.code, event.reason);
      else if (!this.protocolClosing) this.refusalsReported.clear();
      if (event?.code === CloseCode.RoomDeleted) {
        this.deleted = true;
        this.failed = true;
        this.endSwap();
        this.gate.end();
        opts.onRefused({ code: event.code, reason: ROOM_DELETED_MESSAGE });
      } else if (event && event.code >= 4000 && !refusesContent(event.code)) opts.onRefused({ code: event.code, reason: event.reason });
      opts.onChange();
    });
  }

  /**
   * The server closed the socket for what it sent: 1009 (a frame over RELAY_MAX_MESSAGE_BYTES),
   * 4413 (an update or presence over a cost limit), 4507 (the room's ROOM_MAX_BYTES). y-websocket
   * cannot split or drop an update, and every reconnect's sync exchange sends what the relay lacks
   * again, so the next sockets are likely refused the same way: they wait the growing back-off
   * (the sync that precedes each refusal does not count as proven), and a run of such closes is
   * reported once per code. The run ends when the relay is seen accepting the document
   * (accepted()), with a socket that closes any other way, or with the relay's release.
   */
  private refusedContent(code: number, reason: string): void {
    this.gate.refusedContent();
    this.refusedSinceAccepted = true;
    if (this.refusalsReported.has(code)) return;
    this.refusalsReported.add(code);
    this.opts.onRefused({ code, reason: code === CLOSE_TOO_BIG ? TOO_BIG_MESSAGE : refusedMessage(code, reason) });
  }

  /** The relay applied everything this socket sent in its sync (see watchSync): a later refusal starts a new run. */
  private accepted(): void {
    if (!this.refusedSinceAccepted) return;
    this.refusedSinceAccepted = false;
    this.refusalsReported.clear();
    this.gate.contentAccepted();
  }

  /**
   * Tell the pending count which sync messages the relay sends, after the stock handler answered
   * them; and see the relay accept the document after a content refusal. The first sync step 2 on
   * a socket answers the stock provider's opening step 1; any later one answers a step 1 sent
   * after our answer to the relay's step 1 (the stock handler sends it before `heard` runs, and
   * the pending probes wait for it), so the relay applied that answer, with everything it lacked
   * (frames are handled in order; a refused one closes the socket first). After a refusal one
   * such step 1 is sent on each socket, so that proof comes even with nothing pending.
   */
  private watchSync(): void {
    const stock = this.provider.messageHandlers[RelayMessageType.Sync];
    if (!stock) throw new Error('y-websocket has no sync message handler');
    this.provider.messageHandlers[RelayMessageType.Sync] = (encoder, decoder, provider, emitSynced, messageType) => {
      const kind = decoding.peekVarUint(decoder);
      stock(encoder, decoder, provider, emitSynced, messageType);
      if (kind === messageYjsSyncStep2 && ++this.step2Heard >= 2) this.accepted();
      if (kind === messageYjsSyncStep1 && this.refusedSinceAccepted && !this.proofSent) {
        this.proofSent = true;
        // after the stock answer, which it encoded but y-websocket sends only when we return;
        // through the pending channel, which matches the relay's answers to the step 1s it noted
        const ws = this.provider.ws;
        const channel = this.channel;
        queueMicrotask(() => {
          if (ws?.readyState !== 1) return;
          if (channel) channel.sendStep1();
          else ws.send(syncStep1Frame(this.provider.doc));
        });
      }
      this.channel?.heard(kind === messageYjsSyncStep1 ? 'step1' : kind === messageYjsSyncStep2 ? 'step2' : 'other');
    };
  }

  /**
   * What the relay server sends is screened as a WebRTC peer's messages are (webrtc-transport.ts,
   * README "Hostile input"): y-websocket reads every frame in the socket's handler, where a frame
   * lib0 cannot read (a truncated sync step 1 or awareness message) throws, which ends a Node,
   * Electron or React Native process; and a document update with a number past 2^53 - 1 would
   * reach Yjs, whose encoding of it never ends (update-screen.ts). Such a frame is dropped and
   * reported once per socket; a refused sync step 2 leaves the relay unsynced. A sync step 2 or
   * update whose framing is broken is a protocol error instead (protocolError).
   */
  private screenFrames(): void {
    const ws = this.provider.ws;
    const stock = ws?.onmessage;
    if (!ws || typeof stock !== 'function') return;
    ws.onmessage = (event: MessageEvent) => {
      try {
        // as y-websocket reads it (binaryType 'arraybuffer')
        const data = new Uint8Array(event.data as ArrayBuffer);
        const fault = syncFrameFault(data);
        if (fault !== undefined) return this.protocolError(ws, fault);
        const refusal = syncMessageRefusal(data);
        if (refusal !== undefined) return this.dropFrame(`a document update from the relay, not applied: ${refusal}`);
        stock.call(ws, event);
      } catch (err) {
        this.dropFrame(`a frame from the relay that could not be read (${err instanceof Error ? err.message : String(err)})`);
      }
    };
  }

  /**
   * The relay sent a sync step 2 or update whose framing is broken (syncFrameFault): y-protocols
   * would apply nothing and y-websocket would still count a step 2 as the relay's sync (status
   * 'relay', and the pending count confirming). What the relay meant is unknown, so the socket is
   * closed, and y-websocket's close handling runs now rather than after a closing handshake that a
   * hostile server need not finish. The next socket waits the growing back-off, as after refused
   * content (a relay that syncs and then breaks the protocol is not reopened at once each time),
   * until the relay is seen accepting the document again (accepted(): the proof step 1 of watchSync).
   */
  private protocolError(ws: WebSocket, fault: string): void {
    this.refusedSinceAccepted = true;
    this.gate.brokeProtocol();
    this.endSwap();
    if (!this.refusalsReported.has(CLOSE_PROTOCOL_ERROR)) {
      this.refusalsReported.add(CLOSE_PROTOCOL_ERROR);
      this.opts.onRefused({ code: 0, reason: protocolMessage(fault) });
    }
    const onclose = ws.onclose;
    ws.close();
    this.protocolClosing = true;
    try {
      // y-websocket's handler (closeWebsocketConnection): it detaches the socket's handlers, so the real close is ignored
      onclose?.call(ws, { code: CLOSE_PROTOCOL_ERROR, reason: 'protocol error', wasClean: false } as CloseEvent);
    } finally {
      this.protocolClosing = false;
    }
  }

  private dropFrame(message: string): void {
    if (this.dropReported) return;
    this.dropReported = true;
    this.opts.onRefused({ code: 0, reason: `dropped ${message} (later ones on this socket are dropped unreported)` });
  }

  /** open (or being swapped for a socket with a fresh token: the status does not flap) */
  get open(): boolean {
    return this.provider.wsconnected || this.swapTimer !== undefined;
  }

  get synced(): boolean {
    return this.provider.synced || this.swapTimer !== undefined;
  }

  /** The token is about to expire and a fresh one is waiting in the gate: reopen the socket. */
  private swapSocket(): void {
    const ws = this.provider.ws;
    if (!ws || !this.provider.synced) return;
    this.swapTimer = setTimeout(() => this.endSwap(), SWAP_GRACE_MS);
    ws.close();
  }

  private endSwap(): void {
    if (this.swapTimer === undefined) return;
    clearTimeout(this.swapTimer);
    this.swapTimer = undefined;
    this.onChange();
  }

  connect(): void {
    if (this.deleted) return;
    this.wanted = true;
    this.gate.start();
  }

  /**
   * Close the socket but stay in the room for the WebRTC peers: y-websocket's disconnect()
   * would first announce to the relay that this device left (awareness null).
   */
  release(): void {
    this.refusalsReported.clear();
    this.endSwap();
    this.wanted = false;
    this.failed = this.deleted;
    this.gate.stop();
    const ws = this.provider.ws;
    if (ws) ws.close();
  }

  destroy(): void {
    clearTimeout(this.swapTimer);
    this.swapTimer = undefined;
    this.channel?.close();
    this.gate.close();
    this.provider.destroy();
  }
}
