import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const token = () => testToken('alice', ['acme-conversation-*']);

describe('CORS for browser apps on another origin', () => {
  it('answers the preflight for /turn-credentials and allows any origin by default', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET: 'turn-secret-for-tests-0123456789ab' });
    const pre = await fetch(`${server.url}/turn-credentials`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toBe('authorization');
    const res = await fetch(`${server.url}/turn-credentials`, {
      headers: { origin: 'https://app.example.com', authorization: `Bearer ${await token()}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    // a refusal carries the header too, so the page can read the 401
    const refused = await fetch(`${server.url}/turn-credentials`, { headers: { origin: 'https://app.example.com' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('allows only the listed origins when CORS_ORIGINS is set', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' });
    const ok = await fetch(`${server.url}/healthz`, { headers: { origin: 'http://localhost:5173' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(ok.headers.get('vary')).toContain('Origin');
    const other = await fetch(`${server.url}/turn-credentials`, {
      headers: { origin: 'https://evil.example.net', authorization: `Bearer ${await token()}` },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // /metrics is never opened to browsers
    const metrics = await fetch(`${server.url}/metrics`, { headers: { origin: 'https://app.example.com' } });
    expect(metrics.headers.get('access-control-allow-origin')).toBeNull();
  });
});
