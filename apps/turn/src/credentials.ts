/**
 * TURN REST API credentials (coturn's use-auth-secret) fed to node-turn, which only knows a
 * static `credentials[username]` map: a Proxy computes the password on lookup and refuses
 * expired or malformed usernames, and those expiring further ahead than TURN_TTL_SECONDS allows. The check itself is the shared one (matchTurnCredentials,
 * also behind /turn-credentials' tests): here its proof is the request's MESSAGE-INTEGRITY. With
 * two secrets (rotation) the listener first finds which secret signed the datagram and sets it as
 * the candidate for node-turn's synchronous read.
 */
import { expiryRefusal, matchTurnCredentials, turnPassword, turnUsernameExpiry, type TurnRefusal } from '@sync-suite/shared/node';
import { ATTR, integrityMatches, longTermKey, readAttributes } from './stun/codec.js';

/** TurnRefusal, or a USERNAME over USERNAME_MAX_BYTES bytes (refused before any HMAC). */
export type AuthFailure = TurnRefusal | 'username_too_long';

/** RFC 8489 section 14.3: USERNAME MUST contain fewer than 509 bytes (UTF-8). */
export const USERNAME_MAX_BYTES = 508;

/** Whether `username` is within USERNAME_MAX_BYTES; a string's UTF-8 bytes are at least its UTF-16 units, so long ones are never encoded. */
function usernameFits(username: string): boolean {
  return username.length <= USERNAME_MAX_BYTES && Buffer.byteLength(username, 'utf8') <= USERNAME_MAX_BYTES;
}

export interface SignedRequest {
  /** for a username_too_long refusal, at most its first USERNAME_MAX_BYTES + 1 bytes, decoded */
  username: string;
  /** undefined when no secret signed it */
  password: string | undefined;
  failure: AuthFailure | undefined;
}

/**
 * Derived values of one username; bounded by DERIVED_MAX (cleared whole when full), each entry by
 * USERNAME_MAX_BYTES: longer usernames are refused before they get here.
 */
interface Derived {
  /** turnPassword(secret, username), by secret index */
  passwords: Array<string | undefined>;
  /** longTermKey(username, realm, password), by password */
  keys: Map<string, Buffer>;
}
const DERIVED_MAX = 4096;

export class RestCredentials {
  private candidate: { username: string; password: string } | undefined;
  /** a username this datagram's own check refused: node-turn is told it has no password */
  private refused: string | undefined;
  private readonly derived = new Map<string, Derived>();
  readonly map: Record<string, string | undefined>;

  constructor(
    private readonly secrets: readonly string[],
    private readonly realm: string,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    /** TURN_TTL_SECONDS: an expiry further ahead (plus a skew) is refused */
    private readonly maxTtlSeconds: number = Number.POSITIVE_INFINITY,
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
    if (!usernameFits(username)) return undefined;
    const expiry = turnUsernameExpiry(username);
    if (expiry === undefined || expiryRefusal(expiry, this.now(), this.maxTtlSeconds)) return undefined;
    if (this.refused === username) return undefined;
    if (this.candidate?.username === username) return this.candidate.password;
    return this.password(this.secrets[0]!, username);
  }

  private derive(username: string): Derived {
    let d = this.derived.get(username);
    if (!d) {
      if (this.derived.size >= DERIVED_MAX) this.derived.clear();
      d = { passwords: [], keys: new Map() };
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
    // refused before it is decoded whole, memoized or hashed: a USERNAME can fill most of a 64 KB
    // datagram. Checked again decoded: invalid UTF-8 decodes to 3-byte U+FFFD, and node-turn asks
    // passwordFor() with the decoded string.
    const username = user.value.toString('utf8', 0, USERNAME_MAX_BYTES + 1);
    if (!usernameFits(username)) return { username, password: undefined, failure: 'username_too_long' };
    const signs = (password: string) => integrityMatches(datagram, mi, this.key(username, password));
    const result = matchTurnCredentials(username, this.secrets, signs, this.now(), this.password, this.maxTtlSeconds);
    return result.ok ? { username, password: result.password, failure: undefined } : { username, password: undefined, failure: result.reason };
  }

  /**
   * Run `fn` (node-turn's synchronous parse and auth) with the secret that signed the request.
   * A request inspect() refused (a wrong password, found with a constant-time compare) gets no
   * password at all: node-turn then answers 401 as for an unknown user (the same REALM and NONCE
   * as for a bad MESSAGE-INTEGRITY), and its own compare, a `!==` on hex strings
   * (node_modules/node-turn/lib/message.js), never runs on a wrong password.
   */
  withCandidate<T>(signed: SignedRequest | undefined, fn: () => T): T {
    this.candidate = signed?.password ? { username: signed.username, password: signed.password } : undefined;
    this.refused = signed?.failure ? signed.username : undefined;
    try {
      return fn();
    } finally {
      this.candidate = undefined;
      this.refused = undefined;
    }
  }
}
