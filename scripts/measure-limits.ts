/**
 * Measures what real-looking documents cost, to set the relay's update limits (docs/limits.md):
 * a long chat (Y.Array of Y.Map messages, some edited and deleted, many device sessions) and a
 * long formatted editor document (Y.XmlFragment with nested lists, Y.Text with formatting).
 * `node --import tsx scripts/measure-limits.ts`
 */
import * as Y from 'yjs';
import { UpdateReader } from '../apps/server/src/relay/update-reader.js';
import { snapshotLimits } from '../apps/server/src/relay/persistence/merge.js';
import { checkUpdateCost } from '../apps/server/src/relay/update-check.js';
import { DEFAULT_UPDATE_LIMITS } from '../apps/server/src/relay/update-limits.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function chat(messages: number): Y.Doc {
  const rand = rng(1);
  const main = new Y.Doc();
  let session = new Y.Doc();
  Y.applyUpdate(session, Y.encodeStateAsUpdate(main));
  for (let i = 0; i < messages; i++) {
    if (i % 50 === 0) {
      // a new app session: a new Yjs client id (devices restart, tabs open)
      Y.applyUpdate(main, Y.encodeStateAsUpdate(session));
      session.destroy();
      session = new Y.Doc();
      Y.applyUpdate(session, Y.encodeStateAsUpdate(main));
    }
    const list = session.getArray<Y.Map<unknown>>('messages');
    const m = new Y.Map<unknown>();
    m.set('id', `${i.toString(16).padStart(8, '0')}-9d4e-4c1b-8a57-0e4f5d6c7b8a`);
    m.set('author', `device-${Math.floor(rand() * 10)}`);
    m.set('ts', 1_700_000_000_000 + i * 1000);
    // end-to-end encrypted body, base64 (what the chat app stores)
    m.set('body', Buffer.from(Array.from({ length: 40 + Math.floor(rand() * 400) }, () => Math.floor(rand() * 256))).toString('base64'));
    m.set('reactions', new Y.Map());
    list.push([m]);
    if (rand() < 0.05 && list.length > 2) list.get(list.length - 2).set('body', 'edited');
    if (rand() < 0.02 && list.length > 3) list.delete(list.length - 3, 1);
  }
  Y.applyUpdate(main, Y.encodeStateAsUpdate(session));
  return main;
}

function editor(paragraphs: number): Y.Doc {
  const rand = rng(2);
  const doc = new Y.Doc();
  const frag = doc.getXmlFragment('prosemirror');
  for (let p = 0; p < paragraphs; p++) {
    let parent: Y.XmlFragment | Y.XmlElement = frag;
    const depth = p % 10 === 0 ? 8 : 1; // nested lists now and then
    for (let d = 0; d < depth; d++) {
      const el = new Y.XmlElement(d % 2 === 0 ? 'bullet_list' : 'list_item');
      parent.insert(parent.length, [el]);
      parent = el;
    }
    const para = new Y.XmlElement('paragraph');
    parent.insert(parent.length, [para]);
    const text = new Y.XmlText();
    para.insert(0, [text]);
    // typed character by character in runs, with formatting and corrections
    for (let w = 0; w < 30; w++) {
      const word = 'lorem ipsum dolor sit amet '.slice(0, 3 + Math.floor(rand() * 8)) + ' ';
      text.insert(text.length, word, rand() < 0.1 ? { bold: true } : rand() < 0.05 ? { link: { href: 'https://example.com/x' } } : {});
      if (rand() < 0.1) text.delete(Math.max(0, text.length - 3), 2);
    }
  }
  return doc;
}

function measure(name: string, doc: Y.Doc): void {
  const update = Y.encodeStateAsUpdate(doc);
  const t0 = performance.now();
  const cost = new UpdateReader(update, snapshotLimits(DEFAULT_UPDATE_LIMITS)).read();
  const t1 = performance.now();
  checkUpdateCost(new Y.Doc(), update, snapshotLimits(DEFAULT_UPDATE_LIMITS));
  const t2 = performance.now();
  const fresh = new Y.Doc();
  Y.applyUpdate(fresh, update);
  const t3 = performance.now();
  let depth = 0;
  const walk: Array<[Y.AbstractType<unknown>, number]> = [...doc.share.values()].map((t) => [t as unknown as Y.AbstractType<unknown>, 1]);
  while (walk.length) {
    const [t, d] = walk.pop() as [Y.AbstractType<unknown>, number];
    depth = Math.max(depth, d);
    for (let item = t._start; item; item = item.right) if (item.content instanceof Y.ContentType) walk.push([item.content.type as unknown as Y.AbstractType<unknown>, d + 1]);
    for (const item of t._map.values()) if (item.content instanceof Y.ContentType) walk.push([item.content.type as unknown as Y.AbstractType<unknown>, d + 1]);
  }
  console.log(
    JSON.stringify({
      name,
      bytes: update.length,
      structs: cost.structs,
      deleteRanges: cost.deleteRanges,
      deleteClients: cost.deleteClients,
      contentBytes: cost.contentBytes,
      depth,
      readMs: +(t1 - t0).toFixed(1),
      checkMs: +(t2 - t1).toFixed(1),
      applyMs: +(t3 - t2).toFixed(1),
    }),
  );
}

measure('chat 10,000 messages', chat(10_000));
measure('editor 2,000 paragraphs', editor(2_000));
