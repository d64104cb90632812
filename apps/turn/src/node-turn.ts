/**
 * Typed handles on node-turn 0.0.6 internals that our fixes wrap. node-turn ships no types;
 * these interfaces describe only what we touch.
 */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';

const require = createRequire(import.meta.url);

export interface NtAddress {
  family: number;
  address: string;
  port: number;
}

export interface NtAttribute {
  msg: NtMessage;
  type: number;
  name: string | null;
  length: number;
  padding: number;
  value: unknown;
  read(data: Buffer): void;
}

export interface NtUser {
  username: string;
  password: string;
}

export interface NtTransport {
  src: NtAddress;
  dst: NtAddress;
  socket: Socket;
  get5Tuple(): string;
}

export interface NtMessage {
  class: number;
  method: number;
  transactionID: string;
  attributes: NtAttribute[];
  length: number;
  transport: NtTransport;
  allocation: NtAllocation | null;
  user: NtUser | null;
  getAttribute(name: string): unknown;
  getMethodName(): string;
  getAttributes(name: string): unknown[];
  addAttribute(name: string, value?: unknown): void;
  reply(): NtMessage;
  resolve(): void;
  reject(code: number, reason: string): void;
  discard(): void;
  toBuffer(): Buffer;
}

export interface NtAllocation {
  fiveTuple: string;
  transport: NtTransport;
  user: NtUser;
  sockets: Socket[];
  lifetime: number;
  timeToExpiry: number;
  timer: NodeJS.Timeout | undefined;
  permissions: Record<string, number>;
  channelBindings: Record<string, NtAddress | undefined>;
  relayedTransportAddress: NtAddress;
  mappedAddress: NtAddress;
  update(lifetime?: number): void;
  permit(address: string): void;
  /** the channel bound to this peer (address and port), scanning channelBindings */
  getPeerChannelNumber(peer: NtAddress): number | undefined;
}

export type MethodListener = (msg: NtMessage, reply: NtMessage) => void;

export interface NtServer extends EventEmitter {
  software: string;
  realm: string;
  allocations: Record<string, NtAllocation | undefined>;
  network: { sockets: Socket[]; listeningPort: number };
  authentification: {
    credentials: Record<string, string | undefined>;
    generateNonce(): string;
    checkNonce(nonce: string): boolean;
  };
  allocate: {
    allocateUdp(msg: NtMessage): Promise<Socket[]>;
    allocateUdpEven(msg: NtMessage, reservePair: boolean): Promise<Socket[]>;
    getRelayIp(msg: NtMessage): string;
  };
  start(): void;
  stop(): void;
}

export interface NodeTurnConfig {
  listeningIps: string[];
  relayIps: string[];
  externalIps: string | null;
  listeningPort: number;
  minPort: number;
  maxPort: number;
  maxAllocateLifetime: number;
  defaultAllocatetLifetime: number;
  authMech: 'long-term';
  realm: string;
  credentials: Record<string, string | undefined>;
  debugLevel: string;
  log: (message: unknown) => void;
}

export const NodeTurn = require('node-turn') as new (config: NodeTurnConfig) => NtServer;
export const Address = require('node-turn/lib/address.js') as new (address: string, port: number) => NtAddress;
export const Transport = require('node-turn/lib/transport.js') as new (
  protocol: number,
  src: NtAddress,
  dst: NtAddress,
  socket: Socket,
) => NtTransport;
export const Message = require('node-turn/lib/message.js') as new (server: NtServer, transport: NtTransport) => NtMessage & {
  read(datagram: Buffer): boolean;
};
export const Attribute = require('node-turn/lib/attribute.js') as {
  new (msg: NtMessage, name?: string, value?: unknown): NtAttribute;
  prototype: NtAttribute;
};
export const UDP_PROTOCOL = 0x11;
