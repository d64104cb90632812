/**
 * A small STUN/TURN client for tests: crafts the exact requests a regression test needs
 * (extra or odd attributes included), handles the 401 nonce dance, and collects what the
 * server sends back. Test-only; the server side never imports it.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createHash, createHmac, randomBytes } from 'node:crypto';

export const METHOD = { BINDING: 1, ALLOCATE: 3, REFRESH: 4, SEND: 6, DATA: 7, CREATE_PERMISSION: 8, CHANNEL_BIND: 9 } as const;
export const CLASS = { REQUEST: 0, INDICATION: 1, SUCCESS: 2, ERROR: 3 } as const;
export const A = {
  USERNAME: 0x0006, MESSAGE_INTEGRITY: 0x0008, ERROR_CODE: 0x0009, UNKNOWN_ATTRIBUTES: 0x000a, CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d, XOR_PEER_ADDRESS: 0x0012, DATA: 0x0013, REALM: 0x0014, NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_ADDRESS_FAMILY: 0x0017, EVEN_PORT: 0x0018, REQUESTED_TRANSPORT: 0x0019, XOR_MAPPED_ADDRESS: 0x0020,
  RESERVATION_TOKEN: 0x0022,
} as const;
const COOKIE = 0x2112a442;

export type Attr = [type: number, value: Buffer];

export interface Response {
  cls: number;
  method: number;
  attrs: Attr[];
  code?: number;
  /** MESSAGE-INTEGRITY present and valid for our key */
  signed: boolean;
  get(type: number): Buffer | undefined;
}

export const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
export const transport = (proto = 17) => Buffer.from([proto, 0, 0, 0]);

export function xorAddress(ip: string, port: number, txid: Buffer = Buffer.alloc(12)): Buffer {
  if (!ip.includes(':')) {
    const b = Buffer.alloc(8);
    b[1] = 1;
    b.writeUInt16BE(port ^ (COOKIE >>> 16), 2);
    ip.split('.').forEach((o, i) => (b[4 + i] = Number(o) ^ u32(COOKIE)[i]!));
    return b;
  }
  const key = Buffer.concat([u32(COOKIE), txid]);
  const b = Buffer.alloc(20);
  b[1] = 2;
  b.writeUInt16BE(port ^ (COOKIE >>> 16), 2);
  expandV6(ip).forEach((g, i) => b.writeUInt16BE(g ^ key.readUInt16BE(i * 2), 4 + i * 2));
  return b;
}

function expandV6(ip: string): number[] {
  const [l, r] = ip.split('::') as [string, string | undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').flatMap((p) => (p.includes('.') ? v4Groups(p) : [parseInt(p, 16)])) : []);
  const left = parse(l), right = parse(r);
  return [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
}
const v4Groups = (v4: string) => { const o = v4.split('.').map(Number); return [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!]; };

export function readXorAddress(b: Buffer): { ip: string; port: number } {
  const port = b.readUInt16BE(2) ^ (COOKIE >>> 16);
  const ip = [...b.subarray(4, 8)].map((x, i) => x ^ u32(COOKIE)[i]!).join('.');
  return { ip, port };
}

function encodeType(method: number, cls: number): number {
  return (method & 0xf) | ((method & 0x70) << 1) | ((method & 0xf80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

export function encode(method: number, cls: number, txid: Buffer, attrs: Attr[], key?: Buffer): Buffer {
  const body = Buffer.concat(attrs.map(([t, v]) => Buffer.concat([Buffer.from([t >> 8, t & 0xff, v.length >> 8, v.length & 0xff]), v, Buffer.alloc((4 - (v.length % 4)) % 4)])));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(encodeType(method, cls), 0);
  header.writeUInt32BE(COOKIE, 4);
  txid.copy(header, 8);
  if (!key) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', key).update(Buffer.concat([header, body])).digest();
  return Buffer.concat([header, body, Buffer.from([0, 8, 0, 20]), mac]);
}

function decode(msg: Buffer, key: Buffer | undefined): Response | undefined {
  if (msg.length < 20 || msg.readUInt32BE(4) !== COOKIE) return undefined;
  const t = msg.readUInt16BE(0);
  const attrs: Attr[] = [];
  let signed = false;
  for (let o = 20; o + 4 <= msg.length; ) {
    const type = msg.readUInt16BE(o), len = msg.readUInt16BE(o + 2);
    const value = msg.subarray(o + 4, o + 4 + len);
    if (type === A.MESSAGE_INTEGRITY && key) {
      const input = Buffer.from(msg.subarray(0, o));
      input.writeUInt16BE(o - 20 + 24, 2);
      signed = createHmac('sha1', key).update(input).digest().equals(value);
    }
    attrs.push([type, Buffer.from(value)]);
    o += 4 + len + ((4 - (len % 4)) % 4);
  }
  const get = (type: number) => attrs.find(([a]) => a === type)?.[1];
  const err = get(A.ERROR_CODE);
  return {
    cls: ((t >> 4) & 1) | ((t >> 7) & 2),
    method: (t & 0xf) | ((t & 0xe0) >> 1) | ((t & 0x3e00) >> 2),
    attrs, signed, get,
    ...(err ? { code: (err[2]! & 7) * 100 + err[3]! } : {}),
  };
}

export class StunClient {
  private realm = '';
  private nonce = '';
  private readonly waiters = new Map<string, (r: Response) => void>();
  /** ChannelData and Data indications received, in order */
  readonly inbound: Array<{ channel?: number; data: Buffer }> = [];
  private inboundWaiter: (() => void) | undefined;

  private constructor(
    readonly socket: Socket,
    private readonly port: number,
    private readonly username: string,
    private readonly password: string,
  ) {
    socket.on('message', (msg: Buffer) => this.onMessage(msg));
  }

  static async open(port: number, username: string, password: string): Promise<StunClient> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new StunClient(socket, port, username, password);
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  private get key(): Buffer {
    return createHash('md5').update(`${this.username}:${this.realm}:${this.password}`).digest();
  }

  /** An authenticated request (after a first unauthenticated one fetches realm and nonce). */
  async request(method: number, attrs: Attr[] | ((txid: Buffer) => Attr[]) = [], opts: { auth?: boolean } = {}): Promise<Response> {
    if (opts.auth === false) return this.send(method, attrs, undefined);
    if (!this.nonce) {
      const challenge = await this.send(method, attrs, undefined);
      if (challenge.code !== 401) return challenge;
      this.realm = challenge.get(A.REALM)!.toString();
      this.nonce = challenge.get(A.NONCE)!.toString();
    }
    const auth: Attr[] = [[A.USERNAME, Buffer.from(this.username)], [A.REALM, Buffer.from(this.realm)], [A.NONCE, Buffer.from(this.nonce)]];
    const build = typeof attrs === 'function' ? attrs : () => attrs;
    return this.send(method, (txid) => [...build(txid), ...auth], this.key);
  }

  allocate(extra: Attr[] = []): Promise<Response> {
    return this.request(METHOD.ALLOCATE, [[A.REQUESTED_TRANSPORT, transport()], ...extra]);
  }

  permit(ip: string, port = 0): Promise<Response> {
    return this.request(METHOD.CREATE_PERMISSION, (txid) => [[A.XOR_PEER_ADDRESS, xorAddress(ip, port, txid)]]);
  }

  bindChannel(channel: number, ip: string, port: number): Promise<Response> {
    return this.request(METHOD.CHANNEL_BIND, (txid) => [[A.CHANNEL_NUMBER, Buffer.from([channel >> 8, channel & 0xff, 0, 0])], [A.XOR_PEER_ADDRESS, xorAddress(ip, port, txid)]]);
  }

  refresh(lifetime?: number): Promise<Response> {
    return this.request(METHOD.REFRESH, lifetime === undefined ? [] : [[A.LIFETIME, u32(lifetime)]]);
  }

  sendIndication(ip: string, port: number, data: Buffer): void {
    const txid = randomBytes(12);
    this.socket.send(encode(METHOD.SEND, CLASS.INDICATION, txid, [[A.XOR_PEER_ADDRESS, xorAddress(ip, port, txid)], [A.DATA, data]]), this.port, '127.0.0.1');
  }

  sendChannelData(channel: number, data: Buffer): void {
    const header = Buffer.from([channel >> 8, channel & 0xff, data.length >> 8, data.length & 0xff]);
    this.socket.send(Buffer.concat([header, data, Buffer.alloc((4 - (data.length % 4)) % 4)]), this.port, '127.0.0.1');
  }

  /** Wait until `n` inbound data messages arrived. */
  async received(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = setTimeout(() => this.inboundWaiter?.(), timeoutMs);
    try {
      while (this.inbound.length < n) {
        const before = this.inbound.length;
        await new Promise<void>((r) => (this.inboundWaiter = r));
        if (this.inbound.length === before) throw new Error(`timed out waiting for ${n} inbound messages (got ${before})`);
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  close(): void {
    this.socket.close();
  }

  private send(method: number, attrs: Attr[] | ((txid: Buffer) => Attr[]), key: Buffer | undefined, timeoutMs = 3000): Promise<Response> {
    const txid = randomBytes(12);
    const list = typeof attrs === 'function' ? attrs(txid) : attrs;
    const id = txid.toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`no response to method ${method}`));
      }, timeoutMs);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.socket.send(encode(method, CLASS.REQUEST, txid, list, key), this.port, '127.0.0.1');
    });
  }

  private onMessage(msg: Buffer): void {
    if (msg.length >= 4 && (msg[0]! & 0xc0) === 0x40) {
      this.inbound.push({ channel: msg.readUInt16BE(0), data: msg.subarray(4, 4 + msg.readUInt16BE(2)) });
      return this.inboundWaiter?.();
    }
    const r = decode(msg, this.realm ? this.key : undefined);
    if (!r) return;
    if (r.cls === CLASS.INDICATION && r.method === METHOD.DATA) {
      this.inbound.push({ data: r.get(A.DATA)! });
      return this.inboundWaiter?.();
    }
    const id = msg.subarray(8, 20).toString('hex');
    this.waiters.get(id)?.(r);
    this.waiters.delete(id);
  }
}
