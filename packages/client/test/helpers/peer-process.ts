/**
 * Drive test/fixtures/peer.ts (one SyncProvider per process): send commands, wait on events.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export type PeerEvent = Record<string, unknown> & { ev: string };

const PEER = 'packages/client/test/fixtures/peer.ts';

export class PeerProcess {
  readonly events: PeerEvent[] = [];
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly waiters = new Set<() => void>();
  private stderr = '';
  private nextId = 1;
  private exited = false;

  constructor(
    readonly name: string,
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', PEER], { env: { ...process.env, NAME: name, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) this.events.push(JSON.parse(line) as PeerEvent);
      this.wake();
    });
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-4000)));
    this.child.once('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  /** Resolve with the first event (from the start, or after `since`) that matches. */
  waitFor(match: (e: PeerEvent) => boolean, what: string, timeoutMs = 20_000, since = 0): Promise<PeerEvent> {
    return new Promise((done, fail) => {
      const check = (): void => {
        const found = this.events.slice(since).find(match);
        if (found) return finish(() => done(found));
        if (this.exited) finish(() => fail(new Error(`${this.name} exited before: ${what}\n${this.stderr}`)));
      };
      const timer = setTimeout(() => finish(() => fail(new Error(`${this.name}: no "${what}" in ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
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
    this.child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const reply = await this.waitFor((e) => e.ev === 'reply' && e['id'] === id, `reply to ${op}`);
    if (reply['error']) throw new Error(`${this.name} ${op}: ${String(reply['error'])}`);
    return reply['result'];
  }

  get mark(): number {
    return this.events.length;
  }

  tail(): string {
    return `${this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n')}\nstderr: ${this.stderr}`;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill('SIGKILL');
    await gone;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
