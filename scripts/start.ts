/**
 * `npm start`: the server and the TURN server together with embedded defaults.
 * Ctrl-C (or SIGTERM, SIGHUP) stops both gracefully and exits 0 when both stopped cleanly.
 * If one exits on its own, the other is stopped and this process exits with
 * the first one's exit code (128 + signal number when it was killed by a signal, as shells do).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { isProduction } from '../packages/shared/src/config/node-env.js';

/** Longer than the server's own SHUTDOWN_TIMEOUT_MS default, so this only catches hangs. */
const STOP_TIMEOUT_MS = 15_000;

const env = { ...process.env };
// One shared TURN secret for the pair when the operator has not chosen one (dev only).
if (!env['TURN_SECRET']) {
  env['TURN_SECRET'] = randomBytes(24).toString('base64url');
  process.stderr.write('TURN_SECRET not set: generated one for this run (set it to keep credentials valid across restarts)\n');
}
// Loopback peers let a TURN client reach this host's own services, and with auth off anyone who
// reaches the server joins any room and gets TURN credentials: such a run listens on loopback
// only, unless the operator chose the addresses. Loopback peers are turned on only when TURN
// listens on the loopback address chosen here.
const production = isProduction(env['NODE_ENV']);
const loopbackPeers = !env['TURN_ALLOW_LOOPBACK_PEERS'] && !production && !env['TURN_LISTEN_IP'];
if (loopbackPeers || !env['AUTH_SECRET']) {
  const chosen = (['HOST', 'TURN_LISTEN_IP', 'TURN_METRICS_HOST'] as const).filter((name) => !env[name]);
  for (const name of chosen) env[name] = '127.0.0.1';
  if (chosen.length > 0) {
    const why = [!env['AUTH_SECRET'] ? 'auth is off' : '', loopbackPeers ? 'TURN relays to loopback peers' : ''].filter(Boolean).join(' and ');
    process.stderr.write(
      `${chosen.map((name) => `${name}=127.0.0.1`).join(' ')}: listening on this host only (${why}); ` +
        'set HOST and TURN_LISTEN_IP to be reached from other machines\n',
    );
  }
}
if (loopbackPeers) {
  env['TURN_ALLOW_LOOPBACK_PEERS'] = 'true';
  process.stderr.write('TURN_ALLOW_LOOPBACK_PEERS=true for this one-host run (never in production)\n');
} else if (!env['TURN_ALLOW_LOOPBACK_PEERS'] && !production) {
  process.stderr.write('TURN_LISTEN_IP is set: loopback peers stay denied (TURN_ALLOW_LOOPBACK_PEERS=true relays to this host\'s own addresses)\n');
}

// The status page reads TURN's metrics; both run here, so point it at them: loopback when TURN
// listens on every address, else the one address it listens on (loopback by default).
if (!env['TURN_METRICS_URL']) {
  const host = env['TURN_METRICS_HOST'];
  const reach = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  env['TURN_METRICS_URL'] = `http://${reach}:${env['TURN_METRICS_PORT'] ?? '9641'}/metrics`;
}
if (!env['AUTH_SECRET']) {
  // Nothing else tells a new user how `npm run token` (which needs AUTH_SECRET) fits with this.
  process.stderr.write(
    'auth is off: clients connect without a token. To turn it on, start with a secret and sign tokens with the same one:\n' +
      '  export AUTH_SECRET=$(openssl rand -base64 48); npm start\n' +
      "  AUTH_SECRET=$AUTH_SECRET npm run token -- --sub alice --room 'app-conversation-*' --ttl 3600\n",
  );
}

const children = new Map<string, ChildProcess>();
/** Set once: the exit code this process will end with. */
let exitCode: number | undefined;
let stopping = false;

function codeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

function run(name: string, entry: string): void {
  // Own process group: a terminal's Ctrl-C reaches only us, and each child gets exactly one SIGTERM.
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: 'inherit', detached: true });
  children.set(name, child);
  child.on('error', (err) => {
    process.stderr.write(`${name} could not start: ${err.message}\n`);
  });
  child.on('exit', (code, signal) => {
    children.delete(name);
    const own = codeOf(code, signal);
    if (!stopping) {
      // It died on its own: its code is ours, and the rest must stop.
      exitCode = own;
      process.stderr.write(`${name} exited (${code ?? signal}); stopping the rest\n`);
      stopAll();
    } else if (own !== 0 && exitCode === 0) {
      // A failed shutdown is not a clean stop.
      exitCode = own;
    }
    if (children.size === 0) process.exit(exitCode ?? 0);
  });
}

function stopAll(): void {
  if (!stopping) {
    stopping = true;
    setTimeout(() => killAll('SIGKILL'), STOP_TIMEOUT_MS).unref();
  }
  killAll('SIGTERM');
}

function killAll(signal: NodeJS.Signals): void {
  for (const child of children.values()) child.kill(signal);
}

function onSignal(): void {
  // npm forwards the signal it got, and the terminal sends its own: act on the first only.
  if (stopping) return;
  exitCode = 0;
  stopAll();
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

run('server', 'apps/server/src/main.ts');
run('turn', 'apps/turn/src/main.ts');
