/**
 * The live status page: static HTML whose script polls status.json every 2 s, shows the cluster
 * totals as tiles, errors and refusals by reason, a row per instance, and draws the last minute of
 * rates as SVG lines on labelled axes (0 to a round maximum; a minute ago to now). Everything from
 * the JSON goes in through textContent. The script is inline and allowed by its hash in the
 * Content-Security-Policy, so nothing else can run on the page.
 */
import { createHash } from 'node:crypto';

const SCRIPT = `
const params = new URLSearchParams(location.search);
const token = params.get('token');
const headers = token ? { authorization: 'Bearer ' + token } : {};
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));
const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + UNITS[i];
}
const fmtMs = (ms) => (ms === null || ms === undefined ? 'no commits' : (ms < 10 ? ms.toFixed(2) : ms.toFixed(0)) + ' ms');

/** The smallest 1, 2 or 5 times a power of ten at or above n: round numbers on the axis. */
function niceMax(n) {
  if (n <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(n)));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

const WINDOW_MS = 60000;
function drawChart(points, now) {
  const w = 600, h = 160;
  const max = niceMax(Math.max(0, ...points.map((p) => Math.max(p.relayUpdates, p.signalingMessages, p.sealedEnvelopes || 0))));
  // x is time (right edge = now, left edge = a minute ago), so the axis labels hold however many points there are.
  const line = (key) => points.map((p) => {
    const x = Math.max(0, w - ((now - p.t) / WINDOW_MS) * w);
    const y = h - ((p[key] || 0) / max) * h;
    return x.toFixed(1) + ',' + y.toFixed(1);
  }).join(' ');
  $('relay-line').setAttribute('points', line('relayUpdates'));
  $('signal-line').setAttribute('points', line('signalingMessages'));
  $('sealed-line').setAttribute('points', line('sealedEnvelopes'));
  $('chart-max').textContent = fmt(max) + '/s';
  $('y-top').textContent = fmt(max);
  $('y-mid').textContent = fmt(max / 2);
  $('chart').dataset.points = String(points.length);
  $('chart').dataset.max = String(max);
}

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.appendChild(td);
}

function renderReasons(t) {
  const body = $('reasons');
  body.replaceChildren();
  const rows = [
    ...Object.entries(t.errors).map(([k, n]) => ['error', k, n]),
    ...Object.entries(t.refusals).map(([k, n]) => ['refusal', k, n]),
  ];
  for (const [kind, reason, n] of rows) {
    const tr = document.createElement('tr');
    tr.className = kind;
    cell(tr, kind);
    cell(tr, reason);
    cell(tr, fmt(n));
    body.appendChild(tr);
  }
  $('reasons-none').hidden = rows.length > 0;
}

function renderInstances(s) {
  const body = $('instances');
  body.replaceChildren();
  for (const i of s.instances) {
    const e = i.endpoints;
    const tr = document.createElement('tr');
    if (i.id === s.instance) tr.className = 'self';
    cell(tr, (i.host ? i.host + ' ' : '') + '(' + i.id + ')' + (i.id === s.instance ? ' · this page' : ''));
    cell(tr, fmt(e.relay.rooms) + ' / ' + fmt(e.relay.connections));
    cell(tr, fmt(e.signal.rooms) + ' / ' + fmt(e.signal.connections));
    cell(tr, fmt(e.sealed.rooms) + ' / ' + fmt(e.sealed.connections));
    cell(tr, fmt(i.rates.relayUpdates));
    cell(tr, fmtMs(i.commit.p99Ms));
    cell(tr, fmtBytes(i.storage.bytes));
    cell(tr, fmt(i.refusalsTotal) + ' / ' + fmt(i.errorsTotal));
    cell(tr, fmt(i.webhookBacklog));
    body.appendChild(tr);
  }
  $('instance-count').textContent = fmt(s.instances.length) + (s.complete ? '' : ' (Redis unreadable: this instance only)');
}

function render(s) {
  const t = s.totals;
  const e = t.endpoints;
  $('relay-rooms').textContent = fmt(e.relay.rooms);
  $('relay-connections').textContent = fmt(e.relay.connections);
  $('signaling-rooms').textContent = fmt(e.signal.rooms);
  $('signaling-peers').textContent = fmt(e.signal.connections);
  $('sealed-rooms').textContent = fmt(e.sealed.rooms);
  $('sealed-connections').textContent = fmt(e.sealed.connections);
  $('updates-rate').textContent = fmt(t.rates.relayUpdates);
  $('commit-p99').textContent = fmtMs(t.commit.p99Ms);
  $('storage-size').textContent = fmtBytes(t.storage.bytes);
  $('storage-label').textContent = 'storage (' + t.storage.engine + ')';
  if (s.turn.configured === false) $('turn-allocations').textContent = 'not configured';
  else if (!s.turn.reachable) $('turn-allocations').textContent = 'unreachable';
  else $('turn-allocations').textContent = fmt(s.turn.allocations);
  $('refusals').textContent = fmt(t.refusalsTotal);
  $('errors').textContent = fmt(t.errorsTotal);
  $('errors').className = 'value' + (t.errorsTotal > 0 ? ' bad' : '');
  $('webhook-backlog').textContent = fmt(t.webhookBacklog);
  $('state').textContent = s.ready ? 'ready' : 'not ready';
  $('state').className = s.ready ? 'ok' : 'bad';
  $('updated').textContent = 'updated ' + new Date(s.time).toLocaleTimeString() + ' · up ' + fmt(s.uptimeSeconds) + ' s';
  renderReasons(t);
  renderInstances(s);
  $('chart-scope').textContent = s.instances.length > 1 ? 'this instance, ' : '';
  drawChart(s.rates, Date.parse(s.time));
}

async function refresh() {
  try {
    const res = await fetch('status.json', { headers, cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
    $('error').textContent = '';
  } catch (err) {
    $('error').textContent = 'cannot load status: ' + err.message;
  }
}
refresh();
setInterval(refresh, 2000);
`;

export const STATUS_SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;

export const STATUS_CSP = [
  "default-src 'none'",
  `script-src '${STATUS_SCRIPT_HASH}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const tile = (id: string, label: string, labelId = '') =>
  `<div class="tile"><div class="value" id="${id}">–</div><div class="label"${labelId ? ` id="${labelId}"` : ''}>${label}</div></div>`;

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>sync-suite status</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  main { max-width: 860px; margin: 0 auto; padding: 24px 16px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 20px 0 8px; }
  .sub { color: #5b6475; font-size: 13px; margin-bottom: 16px; }
  .ok { color: #137333; } .bad { color: #b3261e; }
  .tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
  .tile { background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 2px #0002; }
  .value { font-size: 26px; font-weight: 600; }
  .label { color: #5b6475; font-size: 13px; }
  .panel { background: #fff; border-radius: 8px; padding: 12px; margin-top: 12px; box-shadow: 0 1px 2px #0002; }
  .legend { font-size: 13px; color: #5b6475; display: flex; gap: 16px; flex-wrap: wrap; }
  .sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  .plot { display: grid; grid-template-columns: 48px 1fr; margin-top: 8px; }
  .yaxis { display: flex; flex-direction: column; justify-content: space-between; height: 160px; font-size: 12px; color: #5b6475; text-align: right; padding-right: 6px; }
  .xaxis { grid-column: 2; display: flex; justify-content: space-between; font-size: 12px; color: #5b6475; }
  svg { width: 100%; height: 160px; display: block; border-left: 1px solid #c4c9d2; border-bottom: 1px solid #c4c9d2; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eceef2; }
  th { color: #5b6475; font-weight: 500; }
  tr.self td { font-weight: 600; }
  tr.error td:first-child { color: #b3261e; }
  #error { color: #b3261e; margin-top: 8px; }
</style>
</head>
<body>
<main>
  <h1>sync-suite <span id="state">…</span></h1>
  <div class="sub" id="updated">loading…</div>
  <div class="tiles">
    ${tile('relay-rooms', 'rooms on /relay')}
    ${tile('relay-connections', 'connections on /relay')}
    ${tile('updates-rate', 'relay updates / s')}
    ${tile('signaling-rooms', 'topics on /signal')}
    ${tile('signaling-peers', 'WebRTC peers on /signal')}
    ${tile('commit-p99', 'commit time p99 (last minute)')}
    ${tile('sealed-rooms', 'rooms on /sealed')}
    ${tile('sealed-connections', 'connections on /sealed')}
    ${tile('storage-size', 'storage', 'storage-label')}
    ${tile('refusals', 'refusals and closes for cause (since start)')}
    ${tile('errors', 'server errors (since start)')}
    ${tile('webhook-backlog', 'webhook backlog')}
    ${tile('turn-allocations', 'TURN allocations')}
  </div>
  <div class="panel">
    <div class="legend">
      <span><span class="sw" style="background:#1a73e8"></span>relay updates/s</span>
      <span><span class="sw" style="background:#e37400"></span>signaling messages/s</span>
      <span><span class="sw" style="background:#188038"></span>sealed updates/s</span>
      <span><span id="chart-scope"></span>last minute, scale 0 to <span id="chart-max">–</span></span>
    </div>
    <div class="plot">
      <div class="yaxis"><span id="y-top">–</span><span id="y-mid">–</span><span>0</span></div>
      <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" data-points="0" role="img" aria-label="messages per second over the last minute">
        <line x1="0" y1="80" x2="600" y2="80" stroke="#eceef2" stroke-width="1"/>
        <line x1="300" y1="0" x2="300" y2="160" stroke="#eceef2" stroke-width="1"/>
        <polyline id="sealed-line" fill="none" stroke="#188038" stroke-width="2" points=""/>
        <polyline id="signal-line" fill="none" stroke="#e37400" stroke-width="2" points=""/>
        <polyline id="relay-line" fill="none" stroke="#1a73e8" stroke-width="2" points=""/>
      </svg>
      <div class="xaxis"><span>−60 s</span><span>−30 s</span><span>now</span></div>
    </div>
  </div>
  <h2>Errors and refusals by reason (since start)</h2>
  <div class="panel">
    <table><thead><tr><th>kind</th><th>reason</th><th>count</th></tr></thead><tbody id="reasons"></tbody></table>
    <div class="label" id="reasons-none">none</div>
  </div>
  <h2>Instances: <span id="instance-count">–</span></h2>
  <div class="panel">
    <table>
      <thead><tr><th>instance</th><th>/relay rooms / conns</th><th>/signal topics / peers</th><th>/sealed rooms / conns</th><th>updates/s</th><th>commit p99</th><th>storage</th><th>refusals / errors</th><th>webhooks</th></tr></thead>
      <tbody id="instances"></tbody>
    </table>
  </div>
  <div id="error"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
