/**
 * Throwaway PostgreSQL and Redis for one test run (test/global-setup.ts): each on a free port,
 * with its data in a temporary folder, stopped and deleted when the run ends. No system service
 * is assumed; only the binaries (`npm run test:setup` installs them).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { baseEnv, freePort, runProcess, type RunningProcess } from './process.js';

export interface Service {
  url: string;
  stop(): Promise<void>;
}

const START_MS = 30_000;

/**
 * A temporary folder for one service of this run: `sync-test-<what>-<pid>-…`. Folders of runs
 * whose process is gone (killed before its teardown) are deleted first.
 */
function serviceDir(what: string): string {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^sync-test-[a-z]+-(\d+)-/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  return mkdtempSync(join(tmpdir(), `sync-test-${what}-${process.pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where initdb and postgres are: Debian's /usr/lib/postgresql/<version>/bin (newest), else PATH. */
export function postgresBinDir(): string | undefined {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(debian, versions[0], 'bin');
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    return initdb ? join(initdb, '..') : undefined;
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root: as root, run it as the `postgres` user the package creates. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ids = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: ids('-u'), gid: ids('-g') };
  } catch {
    throw new Error('running as root, PostgreSQL needs a `postgres` user: apt-get install postgresql');
  }
}

async function stopped(proc: RunningProcess, signal: NodeJS.Signals): Promise<void> {
  await proc.stop(signal, 10_000);
}

/** A PostgreSQL cluster with database `test`, user `postgres`, trust auth, on 127.0.0.1. */
export async function startPostgres(): Promise<Service> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL binaries (initdb, postgres) not found: apt-get install postgresql');
  const user = postgresUser();
  const dir = serviceDir('pg');
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const asUser = { ...(user ?? {}), cwd: dir };
  // --no-sync and fsync=off: throwaway data, so nothing is worth waiting for the disk.
  const initdb = runProcess(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], baseEnv({ LC_ALL: 'C' }), asUser);
  const init = await initdb.exited;
  if (init.code !== 0) throw new Error(`initdb failed (${init.code ?? init.signal}): ${initdb.stderr().slice(-1000)}`);
  const port = await freePort();
  const server = runProcess(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'],
    baseEnv({ LC_ALL: 'C' }),
    asUser,
  );
  const stop = async (): Promise<void> => {
    await stopped(server, 'SIGINT'); // fast shutdown
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await server.waitForStderr((l) => l.includes('database system is ready to accept connections'), START_MS);
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query('CREATE DATABASE test').finally(() => admin.end());
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/test`, stop };
}

/** A redis-server that keeps nothing on disk, on 127.0.0.1 (on `port`: a restart on the same one). */
export async function startRedis(port?: number): Promise<Service> {
  port ??= await freePort();
  const dir = serviceDir('redis');
  const server = runProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], baseEnv(), { cwd: dir });
  const stop = async (): Promise<void> => {
    await stopped(server, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await server.waitForLine((l) => String(l['text']).includes('Ready to accept connections'), START_MS);
  } catch (err) {
    await stop();
    throw new Error(`redis-server did not start (apt-get install redis-server): ${(err as Error).message}`);
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}
