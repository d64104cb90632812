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
import { refusesToken } from './attempt-pacer.js';
import { keepLivePresenceOnClose } from './relay-presence.js';
import { ROOM_DELETED_MESSAGE } from './room-deleted.js';
import { TokenGate } from './token-gate.js';
import { withPath, withQuery } from './endpoints.js';
import { tokenIsReadOnly } from './token-expiry.js';

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

/** WebSocket close: message too big (the server's RELAY_MAX_MESSAGE_BYTES) */
const CLOSE_TOO_BIG = 1009;
const TOO_BIG_MESSAGE =
  "message too big (1009): the relay refused a frame over its RELAY_MAX_MESSAGE_BYTES; the relay path retries after the back-off and is refused while what it lacks is over the limit (WebRTC peers still sync); reported once until a relay socket closes another way";

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
  /** a 1009 was reported and every relay socket since closed 1009 too */
  private tooBigReported = false;

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
        refresh: { marginMs: opts.tokenRefreshMarginMs, onDue: () => this.swapSocket() },
      },
      false,
    );
    this.watchSync();
    this.provider.on('status', ({ status }) => {
      if (status === 'connected') {
        this.failed = false;
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
      if (event?.code === CLOSE_TOO_BIG) this.tooBig();
      else this.tooBigReported = false;
      if (event?.code === CloseCode.RoomDeleted) {
        this.deleted = true;
        this.failed = true;
        this.endSwap();
        this.gate.stop();
        opts.onRefused({ code: event.code, reason: ROOM_DELETED_MESSAGE });
      } else if (event && event.code >= 4000) opts.onRefused({ code: event.code, reason: event.reason });
      opts.onChange();
    });
  }

  /**
   * The server closed the socket 1009: a frame was over its RELAY_MAX_MESSAGE_BYTES. y-websocket
   * cannot split an update, and every reconnect's sync exchange sends what the relay lacks again,
   * so the next sockets are likely refused the same way: they wait the growing back-off (the sync
   * that precedes each 1009 does not count as proven), and a run of such closes is reported once
   * (it ends with a socket that closes any other way, or the relay's release).
   */
  private tooBig(): void {
    this.gate.tooBig();
    if (this.tooBigReported) return;
    this.tooBigReported = true;
    this.opts.onRefused({ code: CLOSE_TOO_BIG, reason: TOO_BIG_MESSAGE });
  }

  /** Tell the pending count which sync messages the relay sends, after the stock handler answered them. */
  private watchSync(): void {
    const stock = this.provider.messageHandlers[RelayMessageType.Sync];
    if (!stock) throw new Error('y-websocket has no sync message handler');
    this.provider.messageHandlers[RelayMessageType.Sync] = (encoder, decoder, provider, emitSynced, messageType) => {
      const kind = decoding.peekVarUint(decoder);
      stock(encoder, decoder, provider, emitSynced, messageType);
      this.channel?.heard(kind === messageYjsSyncStep1 ? 'step1' : kind === messageYjsSyncStep2 ? 'step2' : 'other');
    };
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
    this.tooBigReported = false;
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
