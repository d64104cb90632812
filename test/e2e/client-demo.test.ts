/**
 * The `npm run demo` conversation view in two Chromium pages: messages in a Y.Array of Y.Maps,
 * a sync status indicator, presence avatars; screenshots saved to test-results/demo/ (ignored
 * by git, so a test run never rewrites the tracked pictures in demo/screenshots/).
 */
import { statSync } from 'node:fs';
import { expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';

interface PageView {
  messages: string[];
  avatars: string[];
  status: string;
}

it('the demo syncs a conversation between two pages, with status and presence', async () => {
  const started = Date.now();
  const views = await runInNetns<PageView[]>('test/e2e/fixtures/client-demo-netns.ts', [], { timeoutMs: 80_000 });
  for (const view of views) {
    expect(view.messages).toEqual(['ada: Are we still on for lunch?', 'bob: Yes, 12:30 at the usual place']);
    expect(view.avatars).toEqual(['AD', 'BO']);
    expect(view.status).toBe('peer to peer (1)');
  }
  for (const shot of ['test-results/demo/ada.png', 'test-results/demo/bob.png']) {
    const stat = statSync(shot);
    expect(stat.mtimeMs).toBeGreaterThanOrEqual(started - 1000);
    expect(stat.size).toBeGreaterThan(1000);
  }
});
