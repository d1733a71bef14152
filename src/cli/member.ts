// One cluster member, started: TLS, the peer transport, the Raft server and the client port
// (gRPC, HTTP and the JSON gateway on one port, as etcd's cmux), metrics, and a clean shutdown
// on SIGINT/SIGTERM. Loaded by raftkv.ts once the flags are read and the WAL's reading started.

import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { GRPC_OVERHEAD_BYTES, clientServices, createClientServer } from '../api/client-server.js';
import { PeerListener } from '../transport/peer-listener.js';
import type { RejectedConnection } from '../util/tls-server.js';
import { leanMethods } from '../api/lean-unary.js';
import { ClientFrontDoor } from '../api/front-door.js';
import { accessControllerOf, httpEndpoints } from '../api/http-endpoints.js';
import { createGateway } from '../api/gateway/index.js';
import { initialCorruptCheck, peerMaintenanceService } from '../server/corrupt-check.js';
import { EtcdServer } from '../server/etcd-server.js';
import { DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS } from '../kv/lessor.js';
import type { ServerConfig } from '../server/config.js';
import { DiscoveryError, DiscoveryErrors, joinCluster } from './discovery.js';
import { srvCluster, systemResolver } from './dns-discovery.js';
import { GrpcTransportFactory } from '../transport/grpc-transport.js';
import { Metrics, serveMetrics } from '../server/metrics.js';
import { instrumentServices } from '../api/grpc-metrics.js';
import type { Flags } from './flags.js';
import { exitBySignal, reportFatal } from './process-guards.js';
import { notifySystemd } from './sd-notify.js';
import type { ZapLogger } from '../util/log.js';
import type { WalReadAhead } from '../storage/wal/segment-read.js';
import { hex } from '../util/ids.js';
import { type TlsConfig, isHttps, loadTlsSide, tlsFlagsEmpty, watchTlsFiles } from '../util/tls.js';
import { urlHost } from '../util/url.js';

/**
 * The bootstrap's discovery (ServerConfig.discovery): etcd's JoinCluster, and etcd's advice in
 * the log when it fails for a reason of the token's (etcdmain, before it exits 1).
 */
function discoverWith(d: NonNullable<Flags['discovery']>, dataDir: string, logger: ZapLogger): NonNullable<ServerConfig['discovery']> {
  return async (selfId, self, state) => {
    // etcd's VerifyJoinExisting: a member joining a running cluster is told its peers, not a token.
    if (state === 'existing') throw new Error('discovery URL should not be set when joining existing initial cluster');
    logger.info(`discovering the initial cluster from ${d.url}`);
    try {
      return await joinCluster(d.url, selfId, self, { logger });
    } catch (e) {
      // etcd wraps any failure of its JoinCluster (a registration that could not be sent too)
      // in a DiscoveryError and gives this advice for it before it exits.
      const reason = e instanceof DiscoveryError ? e.message : undefined;
      // With --discovery-fallback=exit, a full cluster gets etcd's general advice.
      const advice = reason === DiscoveryErrors.fullCluster && d.fallback === 'exit' ? undefined : reason;
      switch (advice) {
        case DiscoveryErrors.duplicateId:
          logger.warn('member has been registered with discovery service');
          logger.warn(`but could not find valid cluster configuration in ${dataDir}`);
          logger.warn('check data dir if previous bootstrap succeeded');
          logger.warn('or use a new discovery token if previous bootstrap failed');
          break;
        case DiscoveryErrors.duplicateName:
          logger.warn('member with duplicated name has already been registered');
          logger.warn('cURL the discovery token URL for details');
          logger.warn('do not reuse discovery token; generate a new one to bootstrap a cluster');
          break;
        case DiscoveryErrors.fullCluster:
          // etcd would run as its v2 proxy (--discovery-fallback=proxy), which raftkv is not.
          logger.warn('discovery cluster is full; raftkv cannot fall back to a proxy (--discovery-fallback=proxy), exiting');
          logger.warn('do not reuse discovery token; generate a new one to bootstrap a cluster');
          break;
        default:
          logger.warn('failed to bootstrap; discovery token was already used');
          logger.warn('do not reuse discovery token; generate a new one to bootstrap a cluster');
      }
      throw e;
    }
  };
}

/**
 * The bootstrap's DNS discovery (--discovery-srv): the cluster from SRV records; the SRV queries
 * go to RAFTKV_DNS_SERVERS (comma-separated host:port, raftkv's own) if set, else to the system's.
 */
function discoverSrvWith(flags: Flags, logger: ZapLogger): NonNullable<ServerConfig['discovery']> {
  const { domain, serviceName } = flags.discoverySrv!;
  const servers = process.env.RAFTKV_DNS_SERVERS?.split(',').filter(Boolean);
  return () => srvCluster(domain, serviceName, flags.name, flags.initialAdvertisePeerUrls, systemResolver(servers), logger);
}

/** Go's http.DefaultMaxHeaderBytes, which etcd's HTTP side keeps: the largest request head. */
const GO_MAX_HEADER_BYTES = 1 << 20;

export async function runMember(flags: Flags, logger: ZapLogger, walReadAhead: WalReadAhead): Promise<void> {
  const fail: (msg: string, code?: number) => never = (msg, code = 1) => {
    reportFatal(logger, msg);
    process.exit(code);
  };
  let tls: TlsConfig;
  try {
    tls = await loadTls(flags, (msg) => logger.warn(msg));
  } catch (e) {
    fail(`could not get certs (${(e as Error).message})`);
  }
  const peerDialMap = parseDialMap(process.env.RAFTKV_PEER_DIAL_MAP);
  const transports = new GrpcTransportFactory(logger, peerDialMap, tls);
  const server = new EtcdServer({
    name: flags.name,
    dataDir: flags.dataDir,
    walDir: flags.walDir,
    initialElectionTickAdvance: flags.initialElectionTickAdvance,
    warningApplyMs: flags.warningApplyMs,
    // etcd's lessor checkpoints every 5 minutes (no flag of etcd 3.4 sets the interval).
    leaseCheckpoint: flags.leaseCheckpoint ? { intervalMs: DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS, persist: flags.leaseCheckpointPersist } : undefined,
    advertiseClientUrls: flags.advertiseClientUrls,
    initialAdvertisePeerUrls: flags.initialAdvertisePeerUrls,
    initialCluster: flags.initialCluster,
    initialClusterState: flags.initialClusterState,
    initialClusterToken: flags.initialClusterToken,
    discovery: flags.discovery ? discoverWith(flags.discovery, flags.dataDir, logger) : flags.discoverySrv ? discoverSrvWith(flags, logger) : undefined,
    heartbeatMs: flags.heartbeatInterval,
    electionMs: flags.electionTimeout,
    snapshotCount: flags.snapshotCount,
    snapshotCatchUpEntries: flags.snapshotCatchUpEntries,
    maxRequestBytes: flags.maxRequestBytes,
    maxTxnOps: flags.maxTxnOps,
    enableGrpcGateway: flags.enableGrpcGateway,
    quotaBackendBytes: flags.quotaBackendBytes,
    maxConcurrentStreams: flags.maxConcurrentStreams,
    grpcKeepAliveIntervalMs: flags.grpcKeepAliveIntervalMs,
    grpcKeepAliveTimeoutMs: flags.grpcKeepAliveTimeoutMs,
    cors: flags.cors,
    hostWhitelist: flags.hostWhitelist,
    walSegmentBytes: flags.walSegmentBytes,
    maxWals: flags.maxWals,
    maxSnapshots: flags.maxSnapshots,
    unsafeNoFsync: flags.unsafeNoFsync,
    strictReconfigCheck: flags.strictReconfigCheck,
    walReadAhead,
    leaseReads: flags.leaseReads,
    maxInflightAppends: flags.maxInflightAppends,
    autoCompaction: { mode: flags.autoCompactionMode, retention: flags.autoCompactionRetention },
    peerDialMap,
    transport: transports,
    initialCorruptCheck: flags.initialCorruptCheck,
    forceNewCluster: flags.forceNewCluster, // src/server/force-new-cluster.ts
    corruptCheckTimeMs: flags.corruptCheckTimeMs,
    watchProgressNotifyIntervalMs: flags.watchProgressNotifyIntervalMs,
    auth: flags.auth,
    tls,
    logger,
  });
  try {
    await server.init();
  } catch (e) {
    fail((e as Error).message);
  }
  logger.addFields({ 'local-member-id': hex(server.id) });
  if (flags.initialCorruptCheck) {
    // etcd's CheckInitialHashKV: before serving peers or clients.
    try {
      await initialCorruptCheck(server);
    } catch (e) {
      await server.stop();
      fail((e as Error).message);
    }
  }

  const peerServer = new grpc.Server({ 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  const [svc, impl] = transports.transport!.service();
  peerServer.addService(svc, impl);
  peerServer.addService(...peerMaintenanceService(server));
  // etcd's line for a refused TLS connection (embed/etcd.go's HandshakeFailure), with its fields.
  const rejected = (r: RejectedConnection): void =>
    logger.log('warn', 'rejected connection', {
      'remote-addr': r.remoteAddr,
      'server-name': r.serverName,
      ...(r.cert ? { 'ip-addresses': r.cert.ipAddresses, 'dns-names': r.cert.dnsNames } : {}),
      error: r.error,
    });
  const peerListener = new PeerListener(peerServer, { skipClientSanVerify: flags.peerSkipClientSanVerify, allowedCN: tls.peerAllowedCN, rejected });
  // Metrics first: the client services report every call to them (grpc_server_*), and the
  // peer transport its bytes and round trips (etcd_network_peer_*).
  const metrics = new Metrics(server, { extensive: flags.extensiveMetrics });
  server.metrics = metrics;
  transports.transport!.observer = metrics.peerTraffic;
  const services = instrumentServices(clientServices(server), metrics);
  const clientServer = createClientServer(server, services);
  // One client port for gRPC and HTTP/1.1, as etcd's cmux (src/api/front-door.ts).
  // etcd's JSON gateway on the same port (--enable-grpc-gateway, default on), over the same
  // (instrumented) service implementations as gRPC.
  const gateway = flags.enableGrpcGateway ? createGateway(server, services) : undefined;
  // RAFTKV_GRPC_JS_ONLY=1 leaves every call to grpc-js (a diagnostic switch, for comparisons).
  const lean = process.env.RAFTKV_GRPC_JS_ONLY === '1' ? undefined : { methods: leanMethods(services), maxReceiveBytes: server.cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES };
  // etcd's accessController (--host-whitelist, --cors) before every HTTP request, upgrades included.
  const access = accessControllerOf(server);
  const frontDoor = new ClientFrontDoor(clientServer, httpEndpoints(server, gateway, access), {
    maxHeaderBytes: GO_MAX_HEADER_BYTES,
    lean,
    upgrade: gateway ? (req, socket, head) => (access.admitUpgrade(req, socket) ? gateway.upgrade(req, socket, head) : true) : undefined,
    // Clients wait (connected, unanswered) while a restart replays the log, as with etcd.
    gate: server.replayed(),
    rejected,
  });
  // Rotated certificate files and CRLs are picked up without a restart (etcd reads them at every handshake).
  watchTlsFiles(tls, logger);
  try {
    for (const u of flags.listenPeerUrls) await peerListener.listen(u, tls.peer);
    for (const u of flags.listenClientUrls) await frontDoor.listen(u, tls.client);
  } catch (e) {
    fail(`cannot listen: ${(e as Error).message}`);
  }

  let stopping = false;
  /** Stops the member; `signal`: asked to by SIGTERM or SIGINT, which then ends the process (as etcd). */
  const shutdown = async (code: number, signal?: 'SIGTERM' | 'SIGINT'): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    frontDoor.close();
    clientServer.forceShutdown();
    // A leader stopping on purpose hands over first, with its peer port still open (etcd's Stop).
    if (code === 0) await server.handOverLeadership();
    peerListener.close();
    peerServer.forceShutdown();
    try {
      await server.stop();
      logger.info('stopped');
    } catch (e) {
      // E.g. the last fsync of the WAL failed: what was acknowledged was synced before.
      logger.error(`stopping failed: ${(e as Error).message}`);
      code = code === 0 ? 1 : code;
    }
    logger.flush();
    if (signal && code === 0) exitBySignal(signal);
    process.exit(code);
  };
  server.onFatal = (e) => void shutdown(1).then(() => fail(e.message));
  server.onRemoved = () => void shutdown(0);
  // etcd's line (osutil's interrupt handler), with Go's name of the signal.
  const onSignal = (signal: 'SIGTERM' | 'SIGINT', goName: string) => (): void => {
    logger.log('info', 'received signal; shutting down', { signal: goName });
    void shutdown(0, signal);
  };
  process.on('SIGINT', onSignal('SIGINT', 'interrupt'));
  process.on('SIGTERM', onSignal('SIGTERM', 'terminated'));

  try {
    for (const u of flags.listenMetricsUrls) await serveMetrics(server, metrics, u, { side: tls.client, rejected });
  } catch (e) {
    fail(`cannot serve metrics: ${(e as Error).message}`);
  }

  server.start();
  if (gateway) afterReplay(server, () => void gateway.warm().catch((e: unknown) => logger.warn(`gateway: ${(e as Error)?.message ?? String(e)}`)));
  logger.info(
    `member ${flags.name} (${hex(server.id)}) serving clients on ${flags.listenClientUrls.join(',')} and peers on ${flags.listenPeerUrls.join(',')}`,
  );
  // etcd's order: once the member has joined the cluster, "ready to serve client requests",
  // then systemd is told (Type=notify units wait for it).
  void server.readyNotify().then(() => {
    if (server.isStopped()) return;
    logger.info('ready to serve client requests');
    return notifySystemd(logger);
  });
}

/**
 * Calls `f` once the member has applied what it knew to be committed (its log replayed after a
 * restart): work that can wait, kept off the main thread while the replay holds it.
 */
function afterReplay(server: EtcdServer, f: () => void): void {
  const t = setInterval(() => {
    if (server.isStopped()) clearInterval(t);
    else if (server.sm.appliedIndex >= server.committedIndex()) {
      clearInterval(t);
      f();
    }
  }, 50);
  t.unref();
}

/**
 * Loads the client and peer certificates, or makes self-signed ones for --auto-tls and
 * --peer-auto-tls under <data-dir>/fixtures/{client,peer} (etcd's ClientSelfCert/PeerSelfCert),
 * with etcd's warnings for TLS settings on http URLs.
 */
async function loadTls(flags: Flags, warn: (msg: string) => void): Promise<TlsConfig> {
  const hosts = (urls: string[]) => urls.map((u) => urlHost(new URL(u)));
  for (const u of flags.listenClientUrls.filter((x) => !isHttps(x))) {
    if (!tlsFlagsEmpty(flags.clientTls)) warn(`scheme is HTTP while key and certificate files are present; ignoring key and certificate files: client-url=${u}`);
    if (flags.clientTls.clientCertAuth) warn(`scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL: client-url=${u}`);
  }
  for (const u of flags.listenPeerUrls.filter((x) => !isHttps(x))) {
    if (!tlsFlagsEmpty(flags.peerTls)) warn(`scheme is HTTP while key and certificate files are present; ignoring key and certificate files: peer-url=${u}`);
    if (flags.peerTls.clientCertAuth) warn(`scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL: peer-url=${u}`);
  }
  const client = await loadTlsSide(flags.clientTls, join(flags.dataDir, 'fixtures', 'client'), hosts([...flags.listenClientUrls, ...flags.advertiseClientUrls]), warn);
  const peer = await loadTlsSide(flags.peerTls, join(flags.dataDir, 'fixtures', 'peer'), hosts([...flags.listenPeerUrls, ...flags.initialAdvertisePeerUrls]), warn);
  for (const [name, side] of [['client', client], ['peer', peer]] as const) {
    if (side?.crl && 'error' in side.crl) warn(`cannot use the ${name} CRL file ${side.o.crlFile} (${side.crl.error}): every ${name} certificate is refused until it is fixed`);
  }
  return { client, peer, peerAllowedCN: flags.peerCertAllowedCn };
}

/**
 * RAFTKV_PEER_DIAL_MAP="http://a:1=http://b:2,...": dial another address for a peer URL (the
 * fault-injection suite routes every peer link through its own proxy this way).
 */
function parseDialMap(v: string | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const pair of (v ?? '').split(',').filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i > 0) m.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return m;
}
