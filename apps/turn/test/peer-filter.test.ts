/** The peer filter alone: every IPv6 spelling that reaches an IPv4 host (table of fixtures). */
import { describe, expect, it } from 'vitest';
import { createPeerFilter, embeddedIpv4 } from '../src/peer-filter.js';

describe('peer filter: IPv6 spellings of IPv4 hosts', () => {
  const byDefault = createPeerFilter();
  it.each([
    '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:10.0.0.1', '::ffff:169.254.169.254', // IPv4-mapped, against the IPv4 rules
    '::10.0.0.1', '::8.8.8.8', // IPv4-compatible
    '::ffff:0:10.0.0.1', // IPv4-translated
    '64:ff9b::10.0.0.1', '64:ff9b::8.8.8.8', '64:ff9b:1::a00:1', // NAT64 well-known and local-use
    '2002:a00:1::1', '2002:808:808::1', // 6to4
    '2001:0:4136:e378::1', // Teredo
  ])('denies %s by default', (address) => {
    expect(byDefault.denies(address)).toBe(true);
  });

  it('allows public IPv6 and IPv4', () => {
    expect(byDefault.denies('2001:4860:4860::8888')).toBe(false);
    expect(byDefault.denies('8.8.8.8')).toBe(false);
  });

  it('with the transition prefixes lifted, their embedded IPv4 still meets the IPv4 rules', () => {
    const lifted = createPeerFilter(['private', 'loopback', 'link-local']);
    for (const a of ['64:ff9b::10.0.0.1', '2002:a00:1::1', '::ffff:0:127.0.0.1', '::169.254.169.254', '64:ff9b::a9fe:a9fe']) expect({ a, denied: lifted.denies(a) }).toEqual({ a, denied: true });
    for (const a of ['64:ff9b::8.8.8.8', '2002:808:808::1']) expect({ a, denied: lifted.denies(a) }).toEqual({ a, denied: false });
  });

  it('reads the embedded IPv4 where routers would deliver it', () => {
    expect(embeddedIpv4('2002:c000:0204::1')).toBe('192.0.2.4');
    expect(embeddedIpv4('64:ff9b::c000:204')).toBe('192.0.2.4');
    expect(embeddedIpv4('::ffff:192.0.2.4')).toBe('192.0.2.4');
    expect(embeddedIpv4('2001:db8::1')).toBeUndefined();
  });
});
