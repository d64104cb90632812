/**
 * `npm run fuzz:udp-relay`: builds packages/udp-relay with AddressSanitizer and
 * UndefinedBehaviorSanitizer into a temporary directory (the installed build is not touched)
 * and runs scripts/fuzz/udp-relay-driver.ts against it with the sanitizers' runtimes preloaded,
 * once per seed. Any sanitizer report ends the run with a non-zero exit. Linux with gcc (its
 * libasan and libubsan) only; SECURITY.md says what it covers.
 *
 * Environment: FUZZ_SEEDS (default "1,2,3"), FUZZ_ITERATIONS per seed (default 20000).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sanitizers = '-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g';

function nodeGyp(): string {
  const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error('node-gyp not found (it ships with npm)');
  return found;
}

/** the headers npm builds addons against (npm's `nodedir` setting; node-gyp alone would download them) */
function nodedir(): string[] {
  const dir = process.env.npm_config_nodedir ?? execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
  return dir && dir !== 'undefined' && dir !== 'null' ? [`--nodedir=${dir}`] : [];
}

function runtime(name: string): string {
  const path = execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.startsWith('/')) throw new Error(`gcc has no ${name} (install gcc's sanitizer runtimes)`);
  return path;
}

const work = mkdtempSync(join(tmpdir(), 'udp-relay-fuzz-'));
try {
  cpSync(join(root, 'packages/udp-relay/binding.gyp'), join(work, 'binding.gyp'));
  cpSync(join(root, 'packages/udp-relay/src'), join(work, 'src'), { recursive: true });
  const build = spawnSync(process.execPath, [nodeGyp(), 'rebuild', ...nodedir()], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, CFLAGS: sanitizers, LDFLAGS: sanitizers },
  });
  if (build.status !== 0) {
    console.error(build.stderr);
    throw new Error('udp-relay fuzz: the sanitized build failed');
  }
  const addon = join(work, 'build/Release/udp_relay.node');
  // the flags reached the compiler: the module calls into ASan's runtime
  if (!execFileSync('nm', ['-D', addon], { encoding: 'utf8' }).includes('__asan_')) throw new Error('udp-relay fuzz: the build is not instrumented');
  const seeds = (process.env.FUZZ_SEEDS ?? '1,2,3').split(',').map(Number);
  for (const seed of seeds) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/fuzz/udp-relay-driver.ts')], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 10 * 60_000,
      env: {
        ...process.env,
        UDP_RELAY_ADDON: addon,
        FUZZ_SEED: String(seed),
        LD_PRELOAD: `${runtime('libasan.so')} ${runtime('libubsan.so')}`,
        // node itself is not built with ASan: its own allocations at exit are not this module's leaks
        ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86',
        UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1:exitcode=87',
      },
    });
    if (run.status !== 0) {
      console.error(`udp-relay fuzz: seed ${seed} failed (exit ${run.status ?? run.signal})`);
      process.exit(1);
    }
  }
  console.log(`udp-relay fuzz: ${seeds.length} seeds passed under ASan and UBSan`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
