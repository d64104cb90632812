/**
 * The demo conversation view: messages in a Y.Array of Y.Maps, a sync status indicator and
 * presence avatars from awareness, synced by SyncProvider. Served by ../server.ts.
 * URL parameters: name (who you are), room (default demo-conversation-general).
 */
import * as Y from 'yjs';
import { SyncProvider, type StatusEvent } from '@sync-suite/client';

interface Message {
  id: string;
  author: string;
  text: string;
  at: number;
}

declare global {
  interface Window {
    demo: { send(text: string): void; status(): StatusEvent | undefined; avatars(): string[]; messages(): Message[] };
    demoReady: boolean;
  }
}

const params = new URLSearchParams(location.search);
const name = params.get('name') || `guest-${Math.floor(Math.random() * 1000)}`;
const room = params.get('room') || 'demo-conversation-general';
const COLORS = ['#e11d48', '#2563eb', '#16a34a', '#d97706', '#7c3aed', '#0891b2'];
const colorOf = (who: string): string => COLORS[[...who].reduce((h, c) => h + c.charCodeAt(0), 0) % COLORS.length] as string;

const doc = new Y.Doc();
const messages = doc.getArray<Y.Map<unknown>>('messages');
const provider = new SyncProvider(doc, {
  serverUrl: location.origin,
  room,
  getToken: async () => {
    const res = await fetch(`/demo/token?sub=${encodeURIComponent(name)}&room=${encodeURIComponent(room)}`);
    if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  },
});
provider.awareness.setLocalStateField('user', { name, color: colorOf(name) });
let lastStatus: StatusEvent | undefined;

const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;

function readMessages(): Message[] {
  return messages.toArray().map((m) => ({ id: String(m.get('id')), author: String(m.get('author')), text: String(m.get('text')), at: Number(m.get('at')) }));
}

function renderMessages(): void {
  const list = $('messages');
  list.replaceChildren(
    ...readMessages().map((m) => {
      const li = document.createElement('li');
      li.className = m.author === name ? 'mine' : 'theirs';
      const who = document.createElement('span');
      who.className = 'author';
      who.textContent = m.author;
      who.style.color = colorOf(m.author);
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = m.text;
      li.append(who, text);
      return li;
    }),
  );
  list.scrollTop = list.scrollHeight;
}

function avatars(): string[] {
  return [...provider.awareness.getStates().values()].map((s) => (s['user'] as { name?: string } | undefined)?.name).filter((n): n is string => !!n).sort();
}

function renderPresence(): void {
  $('presence').replaceChildren(
    ...avatars().map((who) => {
      const a = document.createElement('span');
      a.className = 'avatar';
      a.title = who;
      a.textContent = who.slice(0, 2).toUpperCase();
      a.style.background = colorOf(who);
      return a;
    }),
  );
}

function renderStatus(s: StatusEvent): void {
  lastStatus = s;
  const el = $('status');
  el.dataset['status'] = s.status;
  const via = s.status === 'webrtc' ? `peer to peer (${s.webrtcPeers})` : s.status === 'relay' ? 'via relay' : s.status;
  el.textContent = via;
}

function send(text: string): void {
  const m = new Y.Map<unknown>();
  m.set('id', `${doc.clientID}-${Date.now()}`);
  m.set('author', name);
  m.set('text', text);
  m.set('at', Date.now());
  messages.push([m]);
}

document.body.innerHTML = `
  <header><h1># ${room.split('-').slice(2).join('-') || room}</h1><div id="presence"></div><span id="status" data-status="connecting">connecting</span></header>
  <ul id="messages"></ul>
  <form id="composer"><input id="input" autocomplete="off" placeholder="Message as ${name}"><button>Send</button></form>`;
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('input') as HTMLInputElement;
  if (input.value.trim()) send(input.value.trim());
  input.value = '';
});
messages.observeDeep(renderMessages);
provider.awareness.on('change', renderPresence);
provider.on('status', renderStatus);
renderMessages();
renderPresence();

window.demo = { send, status: () => lastStatus, avatars, messages: readMessages };
window.demoReady = true;
