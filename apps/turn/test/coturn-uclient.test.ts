/**
 * coturn's own test client against our TURN server, on the wire: default mode (EVEN-PORT,
 * RESERVATION-TOKEN, REQUESTED-ADDRESS-FAMILY, ChannelData), -c (no RTCP allocation) and
 * -y (client to client through two relays), with REST credentials (-W secret). 0 % loss.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { baseEnv, freeUdpPort, runProcess, type RunningProcess } from '../../../test/helpers/process.js';
import { groupExists, stopGroup } from './helpers/process-group.js';
import { SECRET, startTurn, type TestTurn } from './helpers/turn.js';

let t: TestTurn | undefined;
const children: RunningProcess[] = [];
afterEach(async () => {
  // SIGKILL to `timeout` alone used to leave turnutils_peer running forever (see stopGroup)
  await Promise.all(children.splice(0).map((c) => stopGroup(c)));
  await t?.close();
  t = undefined;
});

function run(cmd: string, args: string[]): { child: RunningProcess['child']; done: Promise<{ code: number | null; out: string }> } {
  const proc = runProcess('timeout', ['30', cmd, ...args], baseEnv(), { detached: true });
  children.push(proc);
  // 'close', not 'exit': the output is complete only once the pipes are drained
  const done = once(proc.child, 'close').then(([code]) => ({ code: code as number | null, out: proc.stdout() + proc.stderr() }));
  return { child: proc.child, done };
}

describe('turnutils_uclient (coturn) against our TURN server', () => {
  it('default mode, -c and -y all relay with 0 % loss', async () => {
    // with -W, uclient puts its own expiry in front of -u, a day ahead: the lifetime our TURN
    // server allows (TURN_TTL_SECONDS, default an hour) must cover it
    const turn = (t = await startTurn({ TURN_ALLOW_LOOPBACK_PEERS: 'true', TURN_TTL_SECONDS: '86400' }));
    const peerPort = await freeUdpPort();
    const peer = run('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)]);
    expect(peer.child.pid).toBeDefined();
    // one username per mode: together they would pass TURN_USER_QUOTA (10)
    const common = (mode: string) => ['-u', turn.creds(`uclient-${mode}`).username, '-L', '127.0.0.1', '-e', '127.0.0.1', '-r', String(peerPort), '-W', SECRET, '-p', String(turn.turn.port), '-n', '50', '-m', '2', '-l', '200'];
    const modes = { default: [], c: ['-c'], y: ['-y'] } as Record<string, string[]>;
    const results = await Promise.all(
      Object.entries(modes).map(async ([mode, flags]) => ({ mode, ...(await run('turnutils_uclient', [...flags, ...common(mode), '127.0.0.1']).done) })),
    );
    for (const r of results) {
      const loss = /Total lost packets (\d+) \(([\d.]+)%\)/.exec(r.out);
      const totals = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(r.out);
      const [sent, received] = [Number(totals?.[1] ?? 0), Number(totals?.[2] ?? -1)];
      expect({ mode: r.mode, code: r.code, lost: loss?.[1], sent: sent >= 100, received: received === sent }, r.out.slice(-1500)).toEqual({
        mode: r.mode, code: 0, lost: '0', sent: true, received: true,
      });
    }
    // the traffic really went through our relay
    expect(await t.metric('turn_relayed_packets_total{direction="to_peer"}')).toBeGreaterThanOrEqual(3 * 100);
    expect(await t.metric('turn_relayed_packets_total{direction="to_client"}')).toBeGreaterThanOrEqual(3 * 100);
    expect(await t.metric('turn_auth_failures_total{reason="bad_password"}')).toBe(0);
    // the echo peer runs until killed: killing its group must leave nothing behind
    await stopGroup(children[0]!);
    expect(groupExists(peer.child.pid!)).toBe(false);
  });
});
