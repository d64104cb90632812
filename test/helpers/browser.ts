/**
 * Headless Chromium for WebRTC tests (docs/testing.md): Debian's chromium
 * driven by playwright-core, with a microphone permission and loopback allowed, because
 * without both Chromium gathers no ICE candidates at all. Run it inside runInNetns so
 * candidates exist only on 127.0.0.1.
 *
 * Pages are served by servePage() from http://127.0.0.1:<port>: localhost counts as a
 * secure context, which WebRTC and WebCrypto need.
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { withTimeout } from './timeout.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

export interface LaunchOptions {
  /** appended to CHROMIUM_ARGS */
  args?: string[];
}

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab whose console messages and page errors are collected in `logs`. */
  newPage(): Promise<Page>;
  /** `[tab n] type: text` lines from every page opened with newPage(); print them when a test fails */
  logs: string[];
  /** Close Chromium and delete its profile directory. Safe to call twice. */
  close(): Promise<void>;
}

export async function launchBrowser(opts: LaunchOptions = {}): Promise<TestBrowser> {
  const profileDir = await mkdtemp(join(tmpdir(), 'sync-suite-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      permissions: ['microphone'],
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    });
  } catch (err) {
    await rm(profileDir, { recursive: true, force: true });
    throw err;
  }
  const logs: string[] = [];
  let tabs = 0;
  let closed = false;
  return {
    context,
    logs,
    async newPage() {
      const tab = ++tabs;
      const page = await context.newPage();
      page.on('console', (msg) => logs.push(`[tab ${tab}] ${msg.type()}: ${msg.text()}`));
      page.on('pageerror', (err) => logs.push(`[tab ${tab}] pageerror: ${err.stack ?? err.message}`));
      return page;
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        await rm(profileDir, { recursive: true, force: true });
      }
    },
  };
}

export interface ServedPage {
  /** http://127.0.0.1:PORT/ : the HTML page that loads the bundle */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** extra static files, by path (e.g. '/fixture.json') */
  files?: Record<string, { body: string; type: string }>;
  /** page title (handy in logs) */
  title?: string;
}

/** Serve `js` (from bundlePage) as an ES module behind a minimal HTML page on 127.0.0.1:0. */
export async function servePage(js: string, opts: ServeOptions = {}): Promise<ServedPage> {
  const title = opts.title ?? 'sync-suite test page';
  const html = `<!doctype html><meta charset="utf-8"><title>${title}</title><script type="module" src="/page.js"></script>`;
  const files: Record<string, { body: string; type: string }> = {
    '/': { body: html, type: 'text/html; charset=utf-8' },
    '/page.js': { body: js, type: 'text/javascript; charset=utf-8' },
    ...opts.files,
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/`,
    origin,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** Open a page on `url` and wait until the bundle set `window[flag]` (the page's ready signal). */
export async function openPage(browser: TestBrowser, url: string, flag = 'harnessReady', timeoutMs = 15_000): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction((name) => (window as unknown as Record<string, unknown>)[name] === true, flag, {
    timeout: timeoutMs,
  });
  return page;
}

/**
 * Launch Chromium and run `use` with it; then, whatever happened, close Chromium and after it
 * each of `alsoClose` in order. A failure's message carries the browser logs (console lines and
 * page errors of every tab), which is usually where the cause is.
 */
export async function withBrowser<T>(
  use: (browser: TestBrowser) => Promise<T>,
  alsoClose: Array<{ close(): Promise<unknown> }> = [],
  opts: LaunchOptions = {},
): Promise<T> {
  let browser: TestBrowser | undefined;
  try {
    browser = await launchBrowser(opts);
    return await use(browser);
  } catch (err) {
    if (!browser) throw err;
    throw new Error(`${(err as Error).message}\nbrowser logs:\n${browser.logs.join('\n')}`);
  } finally {
    await browser?.close();
    for (const thing of alsoClose) await thing.close();
  }
}

/** `const both = onEachPage(pages, ms)`, then `await both((p) => p.evaluate(...), 'what')`: on every page at once, within ms. */
export function onEachPage<P>(pages: readonly P[], ms: number) {
  return <T>(f: (page: P) => Promise<T>, what: string): Promise<T[]> => withTimeout(Promise.all(pages.map(f)), ms, what);
}
