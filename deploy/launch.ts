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
 *   burst; two arenas hold the same allocations.
 * Not --enable-source-maps, though the bundle ships its maps: with it, stack traces name our
 * source files and lines, but node holds each map from start and RSS at start was 68.6-71.2 MB
 * against 64.4-67.2 MB without (docs/benchmarks.md, memory), over the 70 MB target in 3 of 8
 * starts. To debug, add it (`NODE_OPTIONS=--enable-source-maps`): the maps keep only our own
 * sources (deploy/bundle.ts), so that frames in apps/ and packages/ map to file:line.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
export const SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * How the TURN bundle is started, by the image (deploy/Dockerfile's turn stage, held to it by
 * test/deploy-config.test.ts) and by bench/turn.ts. With --enable-source-maps: TURN has no
 * memory target, and its stack traces then name our source files. Not the server's flags or
 * MALLOC_ARENA_MAX: those were measured for the server's connections (above), not for TURN.
 */
export const TURN_NODE_FLAGS: readonly string[] = ['--enable-source-maps'];
