/**
 * Drive test/fixtures/peer.ts (one SyncProvider per process): send commands, wait on events.
 */
import { runProcess, type RunningProcess } from '../../../../test/helpers/process.js';

export type PeerEvent = Record<string, unknown> & { ev: string };

const PEER = 'packages/client/test/fixtures/peer.ts';

export class PeerProcess {
  private readonly running: RunningProcess;
  private nextId = 1;

  constructor(
    readonly name: string,
    env: Record<string, string> = {},
  ) {
    const inherited = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
    this.running = runProcess(process.execPath, ['--import', 'tsx', PEER], { ...inherited, NAME: name, ...env }, { stdin: true });
  }

  /** Every event so far; `mark` and `since` count in the same list. */
  get events(): PeerEvent[] {
    return this.running.lines as PeerEvent[];
  }

  /** Resolve with the first event (from the start, or after `since`) that matches. */
  async waitFor(match: (e: PeerEvent) => boolean, what: string, timeoutMs = 20_000, since = 0): Promise<PeerEvent> {
    try {
      return (await this.running.waitForLine((l) => typeof l['ev'] === 'string' && match(l as PeerEvent), timeoutMs, since)) as PeerEvent;
    } catch (err) {
      throw new Error(`${this.name}: no "${what}" (${(err as Error).message.split(';')[0]})\n${this.tail()}`);
    }
  }

  waitStatus(status: string, what = `status ${status}`, timeoutMs = 20_000, since = 0): Promise<PeerEvent> {
    return this.waitFor((e) => e.ev === 'status' && e['status'] === status, what, timeoutMs, since);
  }

  /** Wait until the messages array holds exactly these texts, in any order. */
  waitTexts(texts: string[], timeoutMs = 20_000): Promise<PeerEvent> {
    const want = JSON.stringify([...texts].sort());
    return this.waitFor((e) => e.ev === 'messages' && JSON.stringify([...(e['texts'] as string[])].sort()) === want, `texts ${want}`, timeoutMs);
  }

  async send(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    this.running.child.stdin?.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const reply = await this.waitFor((e) => e.ev === 'reply' && e['id'] === id, `reply to ${op}`);
    if (reply['error']) throw new Error(`${this.name} ${op}: ${String(reply['error'])}`);
    return reply['result'];
  }

  get mark(): number {
    return this.events.length;
  }

  tail(): string {
    return `${this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n')}\nstderr: ${this.running.stderr().slice(-4000)}`;
  }

  close(): Promise<void> {
    return this.running.kill();
  }
}
