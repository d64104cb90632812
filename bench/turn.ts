/**
 * TURN relay: our server (apps/turn's production bundle: node-turn control plane, our data plane) against coturn, both as child
 * processes on 127.0.0.1 with the same REST secret, the same load from coturn's own client
 * `turnutils_uclient` (M clients x N messages of L bytes, one every Z ms, echoed by
 * `turnutils_peer`), in three modes: ChannelData (`-c`), Send/Data indications (`-c -s`) and
 * client to client through two relays (`-c -y`). Reports loss and the server's CPU seconds
 * (utime + stime from /proc/<pid>/stat, all threads, measured around the load only), with ratios
 * to coturn: of the medians (cpu_vs_coturn), and the median of the ratios within each round
 * (round_ratio_median; rounds run the servers back to back, so each ratio is drift-free).
 * uclient paces itself, so neither server is saturated: compare CPU, not speed.
 *
 * Also, per server: its CPU while idle (same window for all, after the paced modes and a settle
 * of BENCH_TURN_IDLE_SETTLE_S: the periodic cost of a warm process, not start-up work; at the
 * paced rate the per-message figure includes it), and a saturation run: channel and Send/Data
 * load offered at rising rates (uclient -z 1, more clients per step) until loss reaches 1 %;
 * the highest rate under 1 % is the server's saturation rate on this machine (uclient and
 * turnutils_peer share its cores).
 *
 *   node --import tsx bench/turn.ts        (or: npm run bench -- turn)
 *   env: BENCH_TURN_CLIENTS (10), BENCH_TURN_MESSAGES (500), BENCH_TURN_BYTES (200),
 *        BENCH_TURN_INTERVAL_MS (5), BENCH_TURN_ROUNDS (3, medians), BENCH_TURN_WARMUP (1: rounds per
 *        server and mode run first and shown apart, not in the medians), BENCH_TURN_FLOOR (1: also
 *        a bare Node UDP forwarder in front of coturn, bench/lib/udp-forwarder.ts), BENCH_TURN_IDLE_S (10),
 *        BENCH_TURN_IDLE_SETTLE_S (5: seconds between the last paced load and the idle window),
 *        BENCH_TURN_SATURATION (channel,send; "" for none), BENCH_TURN_SATURATION_CLIENTS
 *        (2,4,8,16,32,48,64: clients per step, each offering 1,000 messages/s),
 *        BENCH_TURN_SATURATION_S (5: seconds each client sends), BENCH_TURN_MODES (channel,send,client-to-client:
 *        the paced modes to run, for short A/B runs; the default runs all three),
 *        BENCH_NODE_FLAGS (node flags for our server, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof),
 *        BENCH_BASELINE_DIR (before/after in one run: a bundle directory with turn.mjs, built from
 *        the "before" code with `node --import tsx deploy/bundle.ts DIR`, run as a fourth server
 *        "ours (baseline)" with the same flags and load), BENCH_TURN_ENV (extra environment for
 *        our server, e.g. TURN_UDP_INTERNALS=false; not for the baseline), BENCH_TURN_PIN (0; 1: servers
 *        on the last CPU, the load generator on the others)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answersStun, privateCoturnState, type CoturnState, type StunProbeOptions } from '../test/helpers/coturn.js';
import { freeUdpPort } from '../test/helpers/process.js';
import { cpuSeconds } from './lib/cpu-times.js';
import { productionBundle, turnNodeFlags } from './lib/bundle.js';
import { runIfMain } from './lib/main.js';
import { median } from './lib/stats.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SECRET = 'bench-turn-secret-0123456789abcdef';
/**
 * every child process is killed after this long, whatever happens: the servers live for the whole
 * run (warm-up and floor rounds, then the saturation ramps), which went past 600 s on 2 cores
 */
const BOUND_S = 1800;
/**
 * Relay ports per server: allocations whose client ended without a Refresh of lifetime 0 hold
 * their port for the allocation lifetime, and the saturation steps add a hundred clients per
 * mode (coturn ran out of 500 ports: "508 Cannot create socket").
 */
const RELAY_PORTS = 4000;

export interface TurnBenchOptions {
  clients: number;
  messages: number;
  bytes: number;
  intervalMs: number;
  rounds: number;
  warmupRounds: number;
  /** also measure the floor: a bare Node UDP forwarder in front of coturn (paced modes only) */
  floor: boolean;
  idleSeconds: number;
  /** between the last paced load and the idle window */
  idleSettleSeconds: number;
  saturationModes: string[];
  saturationClients: number[];
  saturationSeconds: number;
  /** paced modes to run (default all three) */
  modes: string[];
  /** a bundle of the code before a change, run as a fourth server */
  baselineDir: string | undefined;
}

export type TurnBenchRow = Record<string, string | number>;

const FLOOR = 'bare Node forwarder (floor)';
const MODES: Record<string, string[]> = { channel: ['-c'], send: ['-c', '-s'], 'client-to-client': ['-c', '-y'] };

interface Child {
  proc: ChildProcess;
  out(): string;
  waitFor(re: RegExp, ms: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * BENCH_TURN_PIN=1: every server on the last CPU this process may use, the load (uclient,
 * turnutils_peer, this harness) on the others, with taskset, so that a server's per-message CPU
 * is not mixed with the load generator's on the same core; off by default (the figures in docs/benchmarks.md say
 * which). taskset execs the command: the pid under `timeout` is still the server's. The
 * harness (all its threads) is back on the CPUs it had when run() ends. All servers share the
 * one CPU (coturn's threads too, and the floor with the coturn it forwards to).
 */
interface Pinning {
  server: string[];
  load: string[];
  /** this harness's CPUs during the run */
  loadCpus: string;
  /** its CPUs before the run, given back after it */
  allowedCpus: string;
}

/** The CPUs this process may run on (a cpuset or taskset may allow fewer than the machine has), from /proc. */
function allowedCpus(): { list: string; cpus: number[] } {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  const cpus = list.split(',').flatMap((part) => {
    const [from, to = from] = part.split('-').map(Number);
    return Array.from({ length: to! - from! + 1 }, (_, i) => from! + i);
  });
  return { list, cpus: cpus.filter((c) => Number.isInteger(c)) };
}

function pinning(): Pinning | undefined {
  if (process.env['BENCH_TURN_PIN'] !== '1') return undefined;
  const allowed = allowedCpus();
  if (allowed.cpus.length < 2) throw new Error(`BENCH_TURN_PIN=1 needs at least 2 CPUs (allowed: ${allowed.list})`);
  const serverCpu = String(allowed.cpus.at(-1));
  const loadCpus = allowed.cpus.slice(0, -1).join(',');
  return { server: ['taskset', '-c', serverCpu], load: ['taskset', '-c', loadCpus], loadCpus, allowedCpus: allowed.list };
}

const setAffinity = (cpus: string) => execFileSync('taskset', ['-a', '-pc', cpus, String(process.pid)], { stdio: 'ignore' });

/** run()'s pinning, for the processes it starts */
let pin: Pinning | undefined;

/** Under `timeout` in a process group of its own; stop() lets `timeout` reap it, then kills the group. */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, role: 'server' | 'load' = 'server'): Child {
  const proc = spawn('timeout', [String(BOUND_S), ...(pin?.[role] ?? []), cmd, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const listeners = new Set<() => void>();
  const add = (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-200_000);
    for (const l of listeners) l();
  };
  proc.stdout!.on('data', add);
  proc.stderr!.on('data', add);
  const exited = once(proc, 'exit');
  return {
    proc,
    out: () => out,
    waitFor: (re, ms) =>
      new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => done(new Error(`${cmd}: no ${re} in ${ms} ms\n${out.slice(-2000)}`)), ms);
        const check = () => re.test(out) && done();
        const gone = () => done(new Error(`${cmd} exited before ${re}\n${out.slice(-2000)}`));
        const done = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          proc.off('exit', gone);
          if (err) fail(err);
          else ok();
        };
        listeners.add(check);
        proc.once('exit', gone);
        check();
      }),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      }
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // the group is gone
      }
    },
  };
}

/** The pid of the tool `timeout` runs (the server itself), for /proc. */
function toolPid(child: Child): number {
  const children = readFileSync(`/proc/${child.proc.pid}/task/${child.proc.pid}/children`, 'utf8').trim().split(/\s+/);
  if (!children[0]) throw new Error('timeout has no child');
  return Number(children[0]);
}

/** Wait up to 10 s for the server's listener; stop at once if it exits, with its output. */
function serverProbe(child: Child): StunProbeOptions {
  const output = (): string => child.out().slice(-2000);
  return { timeoutMs: 10_000, stop: () => (child.proc.exitCode !== null ? `server exited\n${output()}` : undefined), context: output };
}

interface Server {
  name: string;
  port: number;
  pid: number;
  child: Child;
}

async function startOurs(relayBase: number, baseline?: string): Promise<Server> {
  // NAME=value pairs, split at the first '=' (a value may hold more); the fixed keys below win
  const pairs = list(process.env['BENCH_TURN_ENV'] ?? '').filter((kv) => kv.indexOf('=') > 0);
  const extra = baseline ? {} : Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const env = {
    ...extra,
    PATH: process.env['PATH'], HOME: process.env['HOME'],
    TURN_SECRET: SECRET, TURN_LISTEN_IP: '127.0.0.1', TURN_RELAY_IP: '127.0.0.1', TURN_PORT: String(await freeUdpPort()),
    TURN_MIN_PORT: String(relayBase), TURN_MAX_PORT: String(relayBase + RELAY_PORTS - 1), TURN_ALLOW_LOOPBACK_PEERS: 'true',
    TURN_USER_QUOTA: '1000', TURN_METRICS_HOST: '127.0.0.1', TURN_METRICS_PORT: '0', TURN_REALM: 'bench', LOG_LEVEL: 'warn',
  };
  // the production bundle (deploy/bundle.ts), started as the image starts it (deploy/launch.ts): no tsx in the measurement
  const child = start(process.execPath, [...turnNodeFlags(), join(baseline ?? (await productionBundle()), 'turn.mjs')], env);
  // LOG_LEVEL=warn hides the "listening" line: wait until the UDP port answers instead
  await answersStun(Number(env.TURN_PORT), serverProbe(child));
  return { name: baseline ? 'ours (baseline)' : 'ours (node-turn)', port: Number(env.TURN_PORT), pid: toolPid(child), child };
}

/** The floor (bench/lib/udp-forwarder.ts) in front of coturn: its own CPU is what is measured. */
async function startFloor(coturn: Server): Promise<Server> {
  const port = await freeUdpPort();
  const child = start(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/udp-forwarder.ts'), String(port), String(coturn.port)]);
  await child.waitFor(/forwarding/, 15_000);
  await answersStun(port, serverProbe(child));
  return { name: FLOOR, port, pid: toolPid(child), child };
}

async function startCoturn(relayBase: number, state: CoturnState): Promise<Server> {
  const port = await freeUdpPort();
  const child = start('turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`, `--min-port=${relayBase}`, `--max-port=${relayBase + RELAY_PORTS - 1}`,
    '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=bench', '--allow-loopback-peers', '--no-cli', '--no-tls', '--no-dtls',
    '--fingerprint', '--log-file=stdout', '--simple-log', ...state.args,
  ]);
  await child.waitFor(/Total General servers/, 15_000);
  await answersStun(port, serverProbe(child));
  return { name: 'coturn', port, pid: toolPid(child), child };
}

interface Load {
  clients: number;
  messages: number;
  bytes: number;
  intervalMs: number;
}

interface Sample {
  sent: number;
  received: number;
  cpu: number;
  wall: number;
  /** uclient's "Total transmit time" (whole seconds): from the first client's start to the end */
  transmitS: number;
}

async function load(server: Server, mode: string, peerPort: number, o: Load): Promise<Sample> {
  const args = [...(MODES[mode] ?? []), '-L', '127.0.0.1', '-e', '127.0.0.1', '-r', String(peerPort), '-u', 'bench', '-W', SECRET, '-p', String(server.port),
    '-n', String(o.messages), '-m', String(o.clients), '-l', String(o.bytes), '-z', String(o.intervalMs), '127.0.0.1'];
  const cpuBefore = cpuSeconds(server.pid);
  const started = performance.now();
  const client = start('turnutils_uclient', args, process.env, 'load');
  const [code] = (await once(client.proc, 'close')) as [number | null];
  const wall = (performance.now() - started) / 1000;
  let cpu: number;
  try {
    cpu = cpuSeconds(server.pid) - cpuBefore;
  } catch {
    throw new Error(`${server.name} exited during the ${mode} load\n${server.child.out().slice(-3000)}`);
  }
  await client.stop();
  const out = client.out();
  const totals = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(out);
  if (code !== 0 || !totals) throw new Error(`uclient against ${server.name} (${mode}) exited ${code}\n${out.slice(-1500)}`);
  const [sent, received] = [Number(totals[1]), Number(totals[2])];
  const transmitS = Number(/Total transmit time is (\d+)/.exec(out)?.[1] ?? 0);
  return { sent, received, cpu, wall, transmitS };
}

const round = (x: number, digits = 3) => Number(x.toPrecision(digits));
const list = (text: string) => text.split(',').map((x) => x.trim()).filter(Boolean);

function options(over: Partial<TurnBenchOptions>): TurnBenchOptions {
  const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  return {
    clients: env('BENCH_TURN_CLIENTS', 10), messages: env('BENCH_TURN_MESSAGES', 500), bytes: env('BENCH_TURN_BYTES', 200),
    intervalMs: env('BENCH_TURN_INTERVAL_MS', 5), rounds: env('BENCH_TURN_ROUNDS', 3), warmupRounds: env('BENCH_TURN_WARMUP', 1), floor: env('BENCH_TURN_FLOOR', 1) === 1, idleSeconds: env('BENCH_TURN_IDLE_S', 10),
    idleSettleSeconds: env('BENCH_TURN_IDLE_SETTLE_S', 5),
    saturationModes: list(process.env['BENCH_TURN_SATURATION'] ?? 'channel,send'),
    saturationClients: list(process.env['BENCH_TURN_SATURATION_CLIENTS'] ?? '2,4,8,16,32,48,64').map(Number),
    saturationSeconds: env('BENCH_TURN_SATURATION_S', 5),
    modes: list(process.env['BENCH_TURN_MODES'] ?? Object.keys(MODES).join(',')),
    baselineDir: process.env['BENCH_BASELINE_DIR'] || undefined,
    ...over,
  };
}

export async function run(over: Partial<TurnBenchOptions> = {}): Promise<TurnBenchRow[]> {
  const o = options(over);
  pin = pinning();
  if (pin) setAffinity(pin.loadCpus);
  const coturnState = privateCoturnState();
  const base = 30_000 + Math.floor(Math.random() * 2) * 3 * RELAY_PORTS; // three relay ranges
  const peerPort = await freeUdpPort();
  const peer = start('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], process.env, 'load');
  const servers: Server[] = [];
  try {
    const coturn = await startCoturn(base + RELAY_PORTS, coturnState);
    servers.push(await startOurs(base));
    if (o.baselineDir) servers.push(await startOurs(base + 2 * RELAY_PORTS, o.baselineDir));
    servers.push(coturn);
    if (o.floor) servers.push(await startFloor(coturn));
    const rows: TurnBenchRow[] = [];
    for (const mode of o.modes) {
      if (!MODES[mode]) throw new Error(`BENCH_TURN_MODES: unknown mode ${mode} (${Object.keys(MODES).join(', ')})`);
      const samples = new Map<string, Sample[]>();
      const warmups = new Map<string, Sample[]>();
      // Warm-up rounds first (shown in their own column, not in the medians): our server's first
      // allocations and datagrams of a mode run cold JavaScript (its control plane cost about 130 ms
      // per 10 allocations on the first round, 40-60 ms once compiled); a relay runs for days.
      for (let r = 0; r < o.warmupRounds; r++) for (const s of servers) warmups.set(s.name, [...(warmups.get(s.name) ?? []), await load(s, mode, peerPort, o)]);
      // alternate servers round by round, so drift on a shared machine hits both alike; every
      // other round in reverse order (A B, B A), so a steady drift does not favour the first
      for (let r = 0; r < o.rounds; r++) {
        for (const s of r % 2 === 0 ? servers : [...servers].reverse()) samples.set(s.name, [...(samples.get(s.name) ?? []), await load(s, mode, peerPort, o)]);
      }
      rows.push(...summarize(mode, samples, warmups));
    }
    // after the paced load (the first seconds after start are start-up work, not idle cost)
    if (o.idleSeconds > 0) await new Promise((r) => setTimeout(r, o.idleSettleSeconds * 1000));
    rows.push(...(await idle(servers, o.idleSeconds)));
    for (const mode of o.saturationModes) for (const s of servers.filter((x) => x.name !== FLOOR)) rows.push(...(await saturation(s, mode, peerPort, o)));
    return rows;
  } finally {
    await Promise.all([peer.stop(), ...servers.map((s) => s.child.stop())]);
    coturnState.remove();
    // the scenarios run after this one in the same process are not pinned; a failure here must
    // not hide the run's own result or error
    try {
      if (pin) setAffinity(pin.allowedCpus);
    } catch (err) {
      console.warn(`BENCH_TURN_PIN: could not give the harness its CPUs back: ${String(err)}`);
    }
    pin = undefined;
  }
}

/**
 * Each server's CPU over the same idle window, warm and with no load (run after the paced
 * modes): what the paced runs charge per message without relaying anything.
 */
async function idle(servers: Server[], seconds: number): Promise<TurnBenchRow[]> {
  if (seconds <= 0) return [];
  const before = servers.map((s) => cpuSeconds(s.pid));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return servers.map((s, i) => {
    const cpu = cpuSeconds(s.pid) - before[i]!;
    return { server: s.name, mode: 'idle', cpu_s: round(cpu), idle_cpu_pct: round((100 * cpu) / seconds), wall_s: seconds };
  });
}

/**
 * Rising offered rates (clients x 1,000 messages/s, uclient -z 1) until loss reaches 1 %. Each
 * message crosses the server twice (to the peer and back), so relayed datagrams/s are twice the
 * message rate. uclient staggers its clients' starts over 1-6 s: the offered rate is reached
 * once all have started, for at least the last seconds of each step.
 */
async function saturation(server: Server, mode: string, peerPort: number, o: TurnBenchOptions): Promise<TurnBenchRow[]> {
  const rows: TurnBenchRow[] = [];
  let best = 0;
  for (const clients of o.saturationClients) {
    let sample: Sample;
    try {
      sample = await load(server, mode, peerPort, { clients, messages: o.saturationSeconds * 1000, bytes: o.bytes, intervalMs: 1 });
    } catch (err) {
      // a failed step ends this ramp, not the whole run (the rows so far are kept)
      rows.push({ server: server.name, mode: `saturation ${mode}`, offered_msgs_per_s: clients * 1000, error: String(err).split('\n').slice(0, 3).join(' ') });
      break;
    }
    const loss = (100 * (sample.sent - sample.received)) / sample.sent;
    rows.push({
      server: server.name, mode: `saturation ${mode}`, sent: sample.sent, received: sample.received, loss_pct: round(loss),
      cpu_s: round(sample.cpu), cpu_us_per_msg: round((sample.cpu * 1e6) / Math.max(1, sample.received)), wall_s: round(sample.wall),
      offered_msgs_per_s: clients * 1000,
      // what uclient managed: at the top of the ramp it cannot send at the offered rate itself
      sent_msgs_per_s: sample.transmitS > 0 ? Math.round(sample.sent / sample.transmitS) : '',
    });
    if (loss >= 1) break;
    best = clients * 1000;
  }
  // every step under 1 %: the ramp ended before the server did
  const top = best === Math.max(...o.saturationClients) * 1000 ? '>= ' : '';
  rows.push({ server: server.name, mode: `saturation ${mode}`, saturation_msgs_per_s: `${top}${best}`, saturation_relayed_pkts_per_s: `${top}${2 * best}` });
  return rows;
}

function summarize(mode: string, samples: Map<string, Sample[]>, warmups: Map<string, Sample[]>): TurnBenchRow[] {
  const perMessage = (s: Sample) => (s.cpu * 1e6) / Math.max(1, s.received);
  // Round i of every server ran back to back (run() alternates them), so the ratio within a round
  // is not moved by the machine's drift between rounds; its median is the steadier comparison.
  const coturnRounds = (samples.get('coturn') ?? []).map(perMessage);
  const rows = [...samples].map(([server, list]) => {
    const sent = list.reduce((a, s) => a + s.sent, 0);
    const received = list.reduce((a, s) => a + s.received, 0);
    const perMsg = list.map(perMessage);
    const ratios = perMsg.flatMap((x, i) => (coturnRounds[i] ? [x / coturnRounds[i]] : []));
    return {
      server, mode, sent, received, loss_pct: round((100 * (sent - received)) / sent),
      loss_rounds: list.map((s) => s.sent - s.received).join('/'),
      cpu_s: round(median(list.map((s) => s.cpu))), cpu_us_per_msg: round(median(perMsg)),
      cpu_us_rounds: perMsg.map((x) => round(x, 2)).join('/'),
      cpu_vs_coturn: 0 as number | string, wall_s: round(median(list.map((s) => s.wall))),
      warmup_cpu_us: (warmups.get(server) ?? []).map((s) => round(perMessage(s), 2)).join('/'),
      warmup_loss: (warmups.get(server) ?? []).map((s) => s.sent - s.received).join('/'),
      round_ratio_median: ratios.length > 0 ? round(median(ratios)) : 'n/a',
      round_ratios: ratios.map((x) => round(x, 2)).join('/'),
    };
  });
  const coturn = rows.find((r) => r.server === 'coturn');
  for (const r of rows) r.cpu_vs_coturn = coturn && coturn.cpu_us_per_msg > 0 ? round(r.cpu_us_per_msg / coturn.cpu_us_per_msg) : 'n/a';
  return rows;
}

runIfMain(import.meta.url, run);
