/**
 * TURN REST API credentials (coturn's use-auth-secret) fed to node-turn, which only knows a
 * static `credentials[username]` map: a Proxy computes the password on lookup and refuses
 * expired or malformed usernames. The check itself is the shared one (matchTurnCredentials,
 * also behind /turn-credentials' tests): here its proof is the request's MESSAGE-INTEGRITY. With
 * two secrets (rotation) the listener first finds which secret signed the datagram and sets it as
 * the candidate for node-turn's synchronous read.
 */
import { matchTurnCredentials, turnPassword, turnUsernameExpiry, type TurnRefusal } from '@sync-suite/shared/node';
import { ATTR, integrityMatches, longTermKey, readAttributes } from './stun/codec.js';

export type AuthFailure = TurnRefusal;

export interface SignedRequest {
  username: string;
  /** undefined when no secret signed it */
  password: string | undefined;
  failure: AuthFailure | undefined;
}

/** Derived values of one username; bounded by DERIVED_MAX (cleared whole when full) and DERIVED_USERNAME_MAX. */
interface Derived {
  /** turnPassword(secret, username), by secret index */
  passwords: Array<string | undefined>;
  /** longTermKey(username, realm, password), by password */
  keys: Map<string, Buffer>;
}
const DERIVED_MAX = 4096;
/**
 * Longest username (UTF-16 units) whose derived values are kept: the memo's bound is a count, and
 * a USERNAME can fill most of a 64 KB datagram. RFC 5389 section 15.3 caps it at 512 bytes;
 * longer ones are still checked, each time.
 */
const DERIVED_USERNAME_MAX = 512;

export class RestCredentials {
  private candidate: { username: string; password: string } | undefined;
  private readonly derived = new Map<string, Derived>();
  readonly map: Record<string, string | undefined>;

  constructor(
    private readonly secrets: readonly string[],
    private readonly realm: string,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.map = new Proxy<Record<string, string | undefined>>({}, {
      get: (_target, key) => (typeof key === 'string' ? this.passwordFor(key) : undefined),
      has: (_target, key) => typeof key === 'string' && this.passwordFor(key) !== undefined,
      // node-turn's addUser/removeUser: static users are not part of this design.
      set: () => true,
      deleteProperty: () => true,
    });
  }

  /** The password node-turn should check `username` against, or undefined to refuse it. */
  passwordFor(username: string): string | undefined {
    const expiry = turnUsernameExpiry(username);
    if (expiry === undefined || expiry < this.now()) return undefined;
    if (this.candidate?.username === username) return this.candidate.password;
    return this.password(this.secrets[0]!, username);
  }

  private derive(username: string): Derived {
    let d = this.derived.get(username);
    if (!d) {
      d = { passwords: [], keys: new Map() };
      if (username.length > DERIVED_USERNAME_MAX) return d;
      if (this.derived.size >= DERIVED_MAX) this.derived.clear();
      this.derived.set(username, d);
    }
    return d;
  }

  private readonly password = (secret: string, username: string): string => {
    const d = this.derive(username);
    const i = this.secrets.indexOf(secret);
    return (d.passwords[i] ??= turnPassword(secret, username));
  };

  private key(username: string, password: string): Buffer {
    const keys = this.derive(username).keys;
    let key = keys.get(password);
    if (!key) keys.set(password, (key = longTermKey(username, this.realm, password)));
    return key;
  }

  /** Which secret (if any) signed a request carrying USERNAME and MESSAGE-INTEGRITY. */
  inspect(datagram: Buffer): SignedRequest | undefined {
    const attributes = readAttributes(datagram);
    const user = attributes?.find((a) => a.type === ATTR.USERNAME);
    const mi = attributes?.find((a) => a.type === ATTR.MESSAGE_INTEGRITY);
    if (!user || !mi) return undefined;
    const username = user.value.toString('utf8');
    const signs = (password: string) => integrityMatches(datagram, mi, this.key(username, password));
    const result = matchTurnCredentials(username, this.secrets, signs, this.now(), this.password);
    return result.ok ? { username, password: result.password, failure: undefined } : { username, password: undefined, failure: result.reason };
  }

  /** Run `fn` (node-turn's synchronous parse and auth) with the secret that signed the request. */
  withCandidate<T>(signed: SignedRequest | undefined, fn: () => T): T {
    this.candidate = signed?.password ? { username: signed.username, password: signed.password } : undefined;
    try {
      return fn();
    } finally {
      this.candidate = undefined;
    }
  }
}
