/**
 * packages/udp-relay under AddressSanitizer and UndefinedBehaviorSanitizer: scripts/fuzz-udp-relay.ts
 * builds the addon with them (in a temporary directory) and runs its seeded fuzz driver over loopback
 * (scripts/fuzz/udp-relay-driver.ts: hostile datagrams raced by hostile control calls). A sanitizer
 * report fails the run. The addon is built and used on Linux only (packages/udp-relay/index.cjs).
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe.skipIf(process.platform !== 'linux')('udp-relay addon, sanitized fuzz', () => {
  it('survives 3 seeds x 20,000 hostile inputs with no sanitizer report, relaying in C both ways', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/fuzz-udp-relay.ts'], {
      cwd: root,
      env: { ...process.env, FUZZ_SEEDS: '1,2,3', FUZZ_ITERATIONS: '20000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, err.slice(-4000)).toBe(0);
    const runs = out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { seed: number; toPeerPackets: number; toClientPackets: number });
    expect(runs.map((r) => r.seed)).toEqual([1, 2, 3]);
    // the fuzz reached the C path (bound channels relayed), not only the hand-off to JavaScript
    for (const r of runs) {
      expect(r.toPeerPackets).toBeGreaterThan(0);
      expect(r.toClientPackets).toBeGreaterThan(0);
    }
  }, 180_000);
});
