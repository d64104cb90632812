/** When this module is the script node was started with: run the bench, print its table, exit 0 (1 on error). */
import { pathToFileURL } from 'node:url';

export function runIfMain(moduleUrl: string, run: () => Promise<Array<Record<string, string | number>>>): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  run().then(
    (r) => (console.table(r), process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
