#!/usr/bin/env node
// `raftkv [etcd flags]`: runs one cluster member, exactly as `etcd` would with the same flags.

import * as grpc from '@grpc/grpc-js';
import { bind, createClientServer } from '../api/client-server.js';
import { initialCorruptCheck, peerMaintenanceService } from '../server/corrupt-check.js';
import { EtcdServer } from '../server/etcd-server.js';
import { GrpcTransportFactory } from '../transport/grpc-transport.js';
import { Metrics, serveMetrics } from '../server/metrics.js';
import { CommanderError, FlagError, type Flags, parseFlags } from './flags.js';
import { createLogger } from '../util/log.js';
import { installProcessGuards } from './process-guards.js';
import { hex } from '../util/ids.js';
import { type TlsConfig, isHttps, loadTlsSide, tlsFlagsEmpty } from '../util/tls.js';
import { join } from 'node:path';

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      process.stderr.write(`raftkv: ${e.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    if (e instanceof FlagError) {
      process.stderr.write(`raftkv: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger(flags.logLevel, flags.name);
  installProcessGuards((msg) => {
    logger.error(msg);
    logger.flush();
    process.stderr.write(`raftkv: ${msg}\n`);
  });
  let tls: TlsConfig;
  try {
    tls = await loadTls(flags, (msg) => logger.warn(msg));
  } catch (e) {
    const msg = `could not get certs (${(e as Error).message})`;
    logger.error(msg);
    logger.flush();
    process.stderr.write(`raftkv: ${msg}\n`);
    process.exit(1);
  }
  const peerDialMap = parseDialMap(process.env.RAFTKV_PEER_DIAL_MAP);
  const transports = new GrpcTransportFactory(logger, peerDialMap, tls);
  const server = new EtcdServer({
    name: flags.name,
    dataDir: flags.dataDir,
    advertiseClientUrls: flags.advertiseClientUrls,
    initialAdvertisePeerUrls: flags.initialAdvertisePeerUrls,
    initialCluster: flags.initialCluster,
    initialClusterState: flags.initialClusterState,
    initialClusterToken: flags.initialClusterToken,
    heartbeatMs: flags.heartbeatInterval,
    electionMs: flags.electionTimeout,
    snapshotCount: flags.snapshotCount,
    snapshotCatchUpEntries: flags.snapshotCatchUpEntries,
    maxRequestBytes: flags.maxRequestBytes,
    walSegmentBytes: flags.walSegmentBytes,
    leaseReads: flags.leaseReads,
    autoCompaction: { mode: flags.autoCompactionMode, retention: flags.autoCompactionRetention },
    peerDialMap,
    transport: transports,
    initialCorruptCheck: flags.initialCorruptCheck,
    corruptCheckTimeMs: flags.corruptCheckTimeMs,
    auth: flags.auth,
    tls,
    logger,
  });
  const fail = (msg: string, code = 1): never => {
    logger.error(msg);
    logger.flush();
    process.stderr.write(`raftkv: ${msg}\n`);
    process.exit(code);
  };
  try {
    await server.init();
  } catch (e) {
    fail((e as Error).message);
  }
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
  const clientServer = createClientServer(server);
  try {
    for (const u of flags.listenPeerUrls) await bind(peerServer, u, tls.peer);
    for (const u of flags.listenClientUrls) await bind(clientServer, u, tls.client);
  } catch (e) {
    fail(`cannot listen: ${(e as Error).message}`);
  }

  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    clientServer.forceShutdown();
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
    process.exit(code);
  };
  server.onFatal = (e) => void shutdown(1).then(() => fail(e.message));
  server.onRemoved = () => void shutdown(0);
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const metrics = new Metrics(server);
  server.metrics = metrics;
  try {
    for (const u of flags.listenMetricsUrls) {
      const url = new URL(u);
      await serveMetrics(server, metrics, url.hostname, Number(url.port));
    }
  } catch (e) {
    fail(`cannot serve metrics: ${(e as Error).message}`);
  }

  server.start();
  logger.info(
    `member ${flags.name} (${hex(server.id)}) serving clients on ${flags.listenClientUrls.join(',')} and peers on ${flags.listenPeerUrls.join(',')}`,
  );
}

/**
 * Loads the client and peer certificates, or makes self-signed ones for --auto-tls and
 * --peer-auto-tls under <data-dir>/fixtures/{client,peer} (etcd's ClientSelfCert/PeerSelfCert),
 * with etcd's warnings for TLS settings on http URLs.
 */
async function loadTls(flags: Flags, warn: (msg: string) => void): Promise<TlsConfig> {
  const hosts = (urls: string[]) => urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, ''));
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

main().catch((e: unknown) => {
  process.stderr.write(`raftkv: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
