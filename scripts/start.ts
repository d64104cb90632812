/**
 * `npm start`: the server and the TURN server together with embedded defaults.
 * Ctrl-C (or SIGTERM) stops both gracefully; if one exits, the other is stopped and
 * this process exits with the first one's exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const env = { ...process.env };
// One shared TURN secret for the pair when the operator has not chosen one (dev only).
if (!env['TURN_SECRET']) {
  env['TURN_SECRET'] = randomBytes(24).toString('base64url');
  process.stderr.write('TURN_SECRET not set: generated one for this run (set it to keep credentials valid across restarts)\n');
}
if (!env['TURN_ALLOW_LOOPBACK_PEERS'] && env['NODE_ENV'] !== 'production') env['TURN_ALLOW_LOOPBACK_PEERS'] = 'true';

const children = new Map<string, ChildProcess>();
let exitCode: number | undefined;

function run(name: string, entry: string): void {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { env, stdio: 'inherit' });
  children.set(name, child);
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (exitCode === undefined) {
      exitCode = code ?? (signal ? 1 : 0);
      if (exitCode !== 0 || children.size > 0) process.stderr.write(`${name} exited (${code ?? signal}); stopping the rest\n`);
      stopAll('SIGTERM');
    }
    if (children.size === 0) process.exit(exitCode);
  });
}

function stopAll(signal: NodeJS.Signals): void {
  for (const child of children.values()) child.kill(signal);
}

process.on('SIGINT', () => {
  exitCode ??= 0;
  stopAll('SIGTERM');
});
process.on('SIGTERM', () => {
  exitCode ??= 0;
  stopAll('SIGTERM');
});

run('server', 'apps/server/src/main.ts');
run('turn', 'apps/turn/src/main.ts');
