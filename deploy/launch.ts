/**
 * How the server bundle is started: by the image (deploy/Dockerfile's server stage, which
 * test/deploy-config.test.ts holds to these values) and by the benches (bench/lib/bundle.ts),
 * so that what is measured is what ships. Measured in docs/benchmarks.md (memory section):
 * - --max-semi-space-size=2: V8's young generation grows with the objects that survive a
 *   burst of new connections up to 2 x 16 MB by default and stays grown until a scavenge
 *   finds the process idle, which on a server that pings its sockets can take a minute;
 *   2 MB semi-spaces cap it at 4 MB, with no CPU cost the relay bench could see;
 * - MALLOC_ARENA_MAX=2: glibc gives each thread that mallocs under contention its own arena
 *   (V8's compiler and GC helper threads, the SQLite thread), about 2.3 MB each kept after a
 *   burst; two arenas hold the same allocations;
 * - --enable-source-maps: stack traces in logs name the original file and line in apps/ and
 *   packages/. Node reads each bundle's map at load and keeps it: deploy/bundle.ts leaves out of
 *   the maps the sources' text and every segment of bundled dependency code (frames there show
 *   the bundle's position), so the flag costs a small part of what the whole map did.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--enable-source-maps'];
export const SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
