/**
 * createTurnServer: node-turn for the control plane (Allocate, Refresh, CreatePermission,
 * ChannelBind) with our fixes (fixes/), our data plane for relayed datagrams (data-plane/),
 * REST credentials, peer filter, quotas and the health/metrics endpoint. Built separately from
 * main.ts so tests run it in-process.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ConfigError, createLogger, type Logger, type TurnConfig } from '@sync-suite/shared/node';
import { NodeTurn } from './node-turn.js';
import { RestCredentials } from './credentials.js';
import { createPeerFilter, PeerFilterError, type PeerFilter, type SelfAddresses } from './peer-filter.js';
import { AllocationQuotas } from './quotas.js';
import { AllocationRegistry } from './allocations.js';
import { createRelayMetrics } from './metrics.js';
import { lifetimePolicy } from './lifetime.js';
import { RelayPorts } from './relay-ports.js';
import { startHealthServer, type HealthServer } from './health.js';
import type { TurnContext } from './context.js';
import { installAttributeFixes } from './fixes/attributes.js';
import { fixMessageDispatch } from './fixes/message.js';
import { fixAllocate } from './fixes/allocate.js';
import { fixRefresh } from './fixes/refresh.js';
import { guardPeerRequests } from './fixes/peer-requests.js';
import { fixChannelBind } from './fixes/channel-bind.js';
import { closeUdp, listenUdp } from './fixes/network.js';
import { DataPlane } from './data-plane/data-plane.js';
import { RelayCounters } from './data-plane/counters.js';
import { UdpIo } from './data-plane/dgram-fast.js';
import { LogBudget } from './log-budget.js';

export interface TurnServer {
  /** UDP port of the STUN/TURN listener (after start) */
  readonly port: number;
  /** HTTP port of /healthz and /metrics (after start) */
  readonly metricsPort: number;
  /** live allocations */
  readonly allocations: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface TurnServerOptions {
  logger?: Logger;
  /** the log budget's interval (TURN_REFUSAL_LOGS_PER_MINUTE lines per kind in each); tests shorten it */
  logIntervalMs?: number;
}

export function createTurnServer(config: TurnConfig, opts: TurnServerOptions = {}): TurnServer {
  const log = opts.logger ?? createLogger({ level: config.LOG_LEVEL, name: 'turn' });
  const relayIp = config.TURN_RELAY_IP ?? defaultRelayIp(config.TURN_LISTEN_IP);
  const self: SelfAddresses = {
    addresses: selfAddresses(config.TURN_LISTEN_IP, relayIp),
    external: [],
    listenPort: config.TURN_PORT, minPort: config.TURN_MIN_PORT, maxPort: config.TURN_MAX_PORT,
  };
  // an external IP that is also an interface address keeps the stricter rule
  if (config.TURN_EXTERNAL_IP && !self.addresses.includes(config.TURN_EXTERNAL_IP)) self.external = [config.TURN_EXTERNAL_IP];
  const peers = buildPeerFilter(config, self);
  const lifetime = lifetimePolicy(config.TURN_MAX_LIFETIME_SECONDS);
  const secrets = [config.TURN_SECRET, ...(config.TURN_SECRET_PREVIOUS ? [config.TURN_SECRET_PREVIOUS] : [])];
  const credentials = new RestCredentials(secrets, config.TURN_REALM, undefined, config.TURN_TTL_SECONDS);
  const metrics = createRelayMetrics();
  const server = new NodeTurn({
    listeningIps: [config.TURN_LISTEN_IP],
    relayIps: [relayIp],
    externalIps: config.TURN_EXTERNAL_IP ?? null,
    listeningPort: config.TURN_PORT,
    minPort: config.TURN_MIN_PORT,
    maxPort: config.TURN_MAX_PORT,
    maxAllocateLifetime: lifetime.maxSeconds,
    defaultAllocatetLifetime: lifetime.defaultSeconds,
    authMech: 'long-term',
    realm: config.TURN_REALM,
    credentials: credentials.map,
    debugLevel: 'ERROR',
    log: (message) => log.debug({ nodeTurn: String(message) }, 'node-turn'),
  });
  const quotas = new AllocationQuotas(config.TURN_USER_QUOTA, config.TURN_TOTAL_QUOTA);
  const counters = new RelayCounters(metrics);
  const dataPlane = new DataPlane(peers, counters, {
    deniedSend(allocation, address, port) {
      // an indication cannot be answered: drop and count
      metrics.deniedPeers.inc();
      log.debug({ username: allocation.owner, peer: `${address}:${port}` }, 'send to denied peer dropped');
    },
  }, new UdpIo(config.TURN_UDP_INTERNALS, config.TURN_UDP_NATIVE));
  const logBudget = new LogBudget(log, config.TURN_REFUSAL_LOGS_PER_MINUTE, opts.logIntervalMs ?? 60_000);
  const ctx: TurnContext = {
    server, log, logBudget, metrics, peers, lifetime, credentials, quotas, dataPlane,
    registry: new AllocationRegistry(server, dataPlane, quotas, metrics, log),
    ports: new RelayPorts(relayIp, config.TURN_MIN_PORT, config.TURN_MAX_PORT, log, config.TURN_MAX_RESERVATIONS),
    relayFamily: isIP(relayIp) === 6 ? 2 : 1,
    limits: {
      peersPerRequest: config.TURN_MAX_PEERS_PER_REQUEST, permissions: config.TURN_MAX_PERMISSIONS,
      channels: config.TURN_MAX_CHANNELS, reservations: config.TURN_MAX_RESERVATIONS,
    },
  };
  installAttributeFixes();
  fixMessageDispatch(ctx);
  fixAllocate(ctx);
  fixRefresh(ctx);
  // before guardPeerRequests, which wraps the ChannelBind handler in place
  fixChannelBind(ctx);
  guardPeerRequests(ctx);

  let health: HealthServer | undefined;
  let port = 0;
  return {
    get port() { return port; },
    get metricsPort() { return health?.port ?? 0; },
    get allocations() { return ctx.registry.size; },
    async start() {
      const listening = await listenUdp(ctx, config.TURN_LISTEN_IP, config.TURN_PORT);
      port = listening.port;
      self.listenPort = port;
      health = await startHealthServer(metrics.registry, config.TURN_METRICS_HOST, config.TURN_METRICS_PORT, log, () => counters.flush(), config.METRICS_TOKEN);
      log.info(
        {
          listen: `${config.TURN_LISTEN_IP}:${port}`, relayIp, externalIp: config.TURN_EXTERNAL_IP, metricsPort: health.port, deniedPeers: peers.ranges, selfAddresses: self.addresses, externalSelfAddresses: self.external, realm: config.TURN_REALM,
          recvBufferBytes: listening.recvBufferBytes, sendBufferBytes: listening.sendBufferBytes,
          udpPath: dataPlane.io.path.path, udpPathReason: dataPlane.io.path.reason,
        },
        'turn server listening (UDP)',
      );
    },
    async stop() {
      ctx.registry.releaseAll('shutdown');
      ctx.ports.closeAll();
      await closeUdp(ctx);
      await health?.close();
      logBudget.close();
    },
  };
}

function buildPeerFilter(config: TurnConfig, self: SelfAddresses): PeerFilter {
  try {
    return createPeerFilter(config.TURN_DENY_PEERS, config.TURN_ALLOW_LOOPBACK_PEERS, self);
  } catch (err) {
    if (err instanceof PeerFilterError) throw new ConfigError('TURN_DENY_PEERS', err.message);
    throw err;
  }
}

/** The interface addresses this server is reached at: a wildcard listener is reached at every interface address. */
function selfAddresses(listenIp: string, relayIp: string): string[] {
  const out = [listenIp, relayIp];
  if (listenIp === '0.0.0.0' || listenIp === '::') {
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.push(i.address);
  }
  return [...new Set(out)];
}

/** The listen IP, or for a wildcard listener the first non-internal IPv4 address. */
function defaultRelayIp(listenIp: string): string {
  if (listenIp !== '0.0.0.0' && listenIp !== '::') return listenIp;
  for (const list of Object.values(networkInterfaces())) {
    const found = list?.find((i) => i.family === 'IPv4' && !i.internal);
    if (found) return found.address;
  }
  return '127.0.0.1';
}
