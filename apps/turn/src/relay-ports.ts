/**
 * Binding relay sockets in TURN_MIN_PORT..TURN_MAX_PORT. Replaces node-turn's port pickers:
 * its retry re-binds an already failed socket, its sockets have no 'error' listener (one
 * error kills the process), and its EVEN-PORT binds the client's own port number and never
 * issues the RESERVATION-TOKEN for the reserved N+1 port (RFC 5766 section 6.2).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from '@sync-suite/shared/node';
import { directLookup } from './data-plane/scratch.js';

const ATTEMPTS = 64;
/** RFC 5766: a reserved port is held for about 30 seconds. */
const RESERVATION_MS = 30_000;

export class RelayPorts {
  private readonly reservations = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();

  constructor(
    private readonly ip: string,
    private readonly min: number,
    private readonly max: number,
    private readonly log: Logger,
    /** TURN_MAX_RESERVATIONS: held N+1 ports in all */
    private readonly maxReservations = Infinity,
  ) {}

  /** Whether another reservation may be held. */
  get reservationsFull(): boolean {
    return this.reservations.size >= this.maxReservations;
  }

  get reservationCount(): number {
    return this.reservations.size;
  }

  async bindAny(): Promise<Socket> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const socket = await this.tryBind(randomInt(this.min, this.max + 1));
      if (socket) return socket;
    }
    throw new Error('no relay port available');
  }

  /** An even port, and with `reserveNext` the next one held under a token. */
  async bindEven(reserveNext: boolean): Promise<{ socket: Socket; token?: string }> {
    const first = this.min + (this.min % 2);
    const pairs = Math.floor((this.max - 1 - first) / 2) + 1;
    for (let i = 0; i < ATTEMPTS && pairs > 0; i++) {
      const port = first + 2 * randomInt(0, pairs);
      const socket = await this.tryBind(port);
      if (!socket) continue;
      if (!reserveNext) return { socket };
      const next = await this.tryBind(port + 1);
      if (next && this.reservationsFull) {
        // filled while this one was binding: no token (fixes/allocate.ts answered 508 to the rest)
        next.close();
        return { socket };
      }
      if (next) return { socket, token: this.reserve(next) };
      socket.close();
    }
    throw new Error('no even relay port available');
  }

  /** The socket reserved under `token`, once. */
  take(token: string): Socket | undefined {
    const entry = this.reservations.get(token);
    if (!entry) return undefined;
    this.reservations.delete(token);
    clearTimeout(entry.timer);
    return entry.socket;
  }

  closeAll(): void {
    for (const token of [...this.reservations.keys()]) this.take(token)?.close();
  }

  private reserve(socket: Socket): string {
    // 8 characters: node-turn writes the token attribute as an 8-byte string.
    const token = randomBytes(6).toString('base64url');
    const timer = setTimeout(() => this.take(token)?.close(), RESERVATION_MS);
    this.reservations.set(token, { socket, timer });
    return token;
  }

  private tryBind(port: number): Promise<Socket | undefined> {
    const socket = createSocket({ type: isIP(this.ip) === 6 ? 'udp6' : 'udp4', lookup: directLookup });
    return new Promise((resolve) => {
      const onError = () => {
        socket.close();
        resolve(undefined);
      };
      socket.once('error', onError);
      socket.bind({ address: this.ip, port, exclusive: true }, () => {
        socket.off('error', onError);
        socket.on('error', (err) => this.log.debug({ err, port }, 'relay socket error'));
        resolve(socket);
      });
    });
  }
}
