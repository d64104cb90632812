import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SPEC_SERVER_METRICS, createServerMetrics } from '../../src/metrics/server-metrics.js';
import { SPEC_TURN_METRICS, createTurnMetrics } from '../../src/metrics/turn-metrics.js';

/** The names and labels operators rely on (README, docs/*.md): name -> [type, labels]. */
const SPEC_SERVER: Record<string, [string, string[]]> = {
  sync_signaling_connections: ['gauge', []],
  sync_signaling_topics: ['gauge', []],
  sync_signaling_messages_total: ['counter', ['type']],
  sync_relay_connections: ['gauge', []],
  sync_relay_rooms: ['gauge', []],
  sync_relay_updates_total: ['counter', []],
  sync_relay_update_bytes_total: ['counter', []],
  sync_relay_persist_seconds: ['histogram', []],
  sync_auth_failures_total: ['counter', ['endpoint', 'reason']],
  sync_rejected_messages_total: ['counter', ['endpoint', 'reason']],
  sync_sealed_connections: ['gauge', []],
  sync_sealed_rooms: ['gauge', []],
  sync_sealed_envelopes_total: ['counter', ['kind']],
  sync_sealed_bytes_total: ['counter', []],
  sync_sealed_snapshots_total: ['counter', []],
};
const SPEC_TURN: Record<string, [string, string[]]> = {
  turn_allocations: ['gauge', []],
  turn_allocations_total: ['counter', []],
  turn_auth_failures_total: ['counter', []],
  turn_relayed_bytes_total: ['counter', ['direction']],
  turn_denied_peers_total: ['counter', []],
};

interface Described {
  name: string;
  help: string;
  type: string;
  labelNames: string[];
}

/** What the registry says about each metric, read from prom-client's own metric objects. */
function describe_(registry: Registry): Map<string, Described> {
  const out = new Map<string, Described>();
  for (const m of registry.getMetricsAsArray() as unknown as Array<Described & { labelNames?: string[] }>) {
    out.set(m.name, { name: m.name, help: m.help, type: m.type, labelNames: m.labelNames ?? [] });
  }
  return out;
}

describe.each([
  ['server', () => createServerMetrics().registry, SPEC_SERVER, SPEC_SERVER_METRICS as readonly string[]],
  ['turn', () => createTurnMetrics().registry, SPEC_TURN, SPEC_TURN_METRICS as readonly string[]],
])('%s metrics', (_label, makeRegistry, spec, exported) => {
  it('the exported list is exactly the documented names', () => {
    expect([...exported].sort()).toEqual(Object.keys(spec).sort());
  });

  it.each(Object.entries(spec))('%s has its documented type, help and labels', (name, [type, labels]) => {
    const m = describe_(makeRegistry()).get(name);
    expect(m, `${name} is registered`).toBeDefined();
    expect(m?.type).toBe(type);
    expect(m?.help.length).toBeGreaterThan(5);
    // The documented labels must be there; a metric may have more.
    expect(m?.labelNames).toEqual(expect.arrayContaining(labels));
  });

  it('each name appears once in the exposition, with default process metrics', async () => {
    const text = await makeRegistry().metrics();
    for (const name of Object.keys(spec)) {
      expect(text.split('\n').filter((l) => l.startsWith(`# TYPE ${name} `))).toHaveLength(1);
    }
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  it('two instances in one process do not collide (one registry each)', () => {
    expect(() => {
      makeRegistry();
      makeRegistry();
    }).not.toThrow();
  });
});

describe('documented labels exactly', () => {
  it('server labelled metrics have only the documented labels', () => {
    const m = describe_(createServerMetrics().registry);
    expect(m.get('sync_signaling_messages_total')?.labelNames).toEqual(['type']);
    expect(m.get('sync_auth_failures_total')?.labelNames).toEqual(['endpoint', 'reason']);
    expect(m.get('sync_rejected_messages_total')?.labelNames).toEqual(['endpoint', 'reason']);
  });

  it('counting shows up under the documented name and labels', async () => {
    const metrics = createServerMetrics();
    metrics.authFailures.inc({ endpoint: 'relay', reason: 'expired' });
    metrics.relayPersistSeconds.observe(0.004);
    const text = await metrics.registry.metrics();
    expect(text).toContain('sync_auth_failures_total{endpoint="relay",reason="expired"} 1');
    expect(text).toContain('sync_relay_persist_seconds_count 1');
  });
});
