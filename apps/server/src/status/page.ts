/**
 * The live status page: static HTML whose script polls status.json every 2 s and draws the
 * last minute of update rates as an SVG line. The script is inline and allowed by its hash
 * in the Content-Security-Policy, so nothing else can run on the page.
 */
import { createHash } from 'node:crypto';

const SCRIPT = `
const params = new URLSearchParams(location.search);
const token = params.get('token');
const headers = token ? { authorization: 'Bearer ' + token } : {};
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));

function drawChart(points) {
  const svg = $('chart');
  const w = 600, h = 160, pad = 4;
  const max = Math.max(1, ...points.map((p) => Math.max(p.relayUpdates, p.signalingMessages)));
  const line = (key) => points.map((p, i) => {
    const x = pad + (points.length < 2 ? 0 : (i * (w - 2 * pad)) / (points.length - 1));
    const y = h - pad - (p[key] / max) * (h - 2 * pad);
    return x.toFixed(1) + ',' + y.toFixed(1);
  }).join(' ');
  $('relay-line').setAttribute('points', line('relayUpdates'));
  $('signal-line').setAttribute('points', line('signalingMessages'));
  $('chart-max').textContent = fmt(max) + '/s';
  svg.dataset.points = String(points.length);
}

function render(s) {
  $('signaling-peers').textContent = fmt(s.signaling.peers);
  $('signaling-rooms').textContent = fmt(s.signaling.rooms);
  $('relay-connections').textContent = fmt(s.relay.connections);
  $('relay-rooms').textContent = fmt(s.relay.rooms);
  const last = s.rates[s.rates.length - 1];
  $('updates-rate').textContent = last ? fmt(last.relayUpdates) : '–';
  if (s.turn.configured === false) $('turn-allocations').textContent = 'not configured';
  else if (!s.turn.reachable) $('turn-allocations').textContent = 'unreachable';
  else $('turn-allocations').textContent = fmt(s.turn.allocations);
  $('refusals').textContent = fmt(s.refusalsTotal);
  $('webhook-backlog').textContent = fmt(s.webhookBacklog);
  $('state').textContent = s.ready ? 'ready' : 'not ready';
  $('state').className = s.ready ? 'ok' : 'bad';
  $('updated').textContent = 'updated ' + new Date(s.time).toLocaleTimeString() + ' · up ' + fmt(s.uptimeSeconds) + ' s';
  drawChart(s.rates);
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

const tile = (id: string, label: string) => `<div class="tile"><div class="value" id="${id}">–</div><div class="label">${label}</div></div>`;

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
  main { max-width: 720px; margin: 0 auto; padding: 24px 16px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6475; font-size: 13px; margin-bottom: 16px; }
  .ok { color: #137333; } .bad { color: #b3261e; }
  .tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
  .tile { background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 2px #0002; }
  .value { font-size: 26px; font-weight: 600; }
  .label { color: #5b6475; font-size: 13px; }
  .chart { background: #fff; border-radius: 8px; padding: 12px; margin-top: 12px; box-shadow: 0 1px 2px #0002; }
  .legend { font-size: 13px; color: #5b6475; display: flex; gap: 16px; }
  .sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  svg { width: 100%; height: 160px; display: block; }
  #error { color: #b3261e; margin-top: 8px; }
</style>
</head>
<body>
<main>
  <h1>sync-suite <span id="state">…</span></h1>
  <div class="sub" id="updated">loading…</div>
  <div class="tiles">
    ${tile('signaling-peers', 'WebRTC peers (signaling)')}
    ${tile('signaling-rooms', 'rooms (signaling)')}
    ${tile('relay-connections', 'relay connections')}
    ${tile('relay-rooms', 'rooms (relay)')}
    ${tile('updates-rate', 'relay updates / s')}
    ${tile('turn-allocations', 'TURN allocations')}
    ${tile('refusals', 'refusals and closes for cause (total)')}
    ${tile('webhook-backlog', 'webhook backlog')}
  </div>
  <div class="chart">
    <div class="legend">
      <span><span class="sw" style="background:#1a73e8"></span>relay updates/s</span>
      <span><span class="sw" style="background:#e37400"></span>signaling messages/s</span>
      <span>last minute, max <span id="chart-max">–</span></span>
    </div>
    <svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" data-points="0" role="img" aria-label="updates per second">
      <polyline id="signal-line" fill="none" stroke="#e37400" stroke-width="2" points=""/>
      <polyline id="relay-line" fill="none" stroke="#1a73e8" stroke-width="2" points=""/>
    </svg>
  </div>
  <div id="error"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
