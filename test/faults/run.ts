// One fault-injection run on real processes: a cluster whose peer links go through
// fault-injecting proxies, the client workload, a seeded nemesis, then healing, final reads and
// the checks (linearizability per key, no acknowledged insert lost, monotonic revisions).

import * as grpc from '@grpc/grpc-js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeededRand } from '../../src/raft/rand.js';
import { type TestCerts, makeTestCerts } from '../support/certs.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';
import { type Op, checkHistory, checkMonotonicRevisions, describeOp } from './checker.js';
import { ProxyNet } from './proxy.js';
import { type Insert, regKey, runWorkload } from './workload.js';

export const FAULT_KINDS = ['kill', 'leader', 'pause', 'partition'] as const;
/** Named fault programs (for the scenario tests) on top of the four kinds. */
export const SCENARIO_FAULTS = ['isolate-leader', 'slow-follower', 'slow-majority', 'restart-all', 'oneway'] as const;
export type Fault = (typeof FAULT_KINDS)[number] | (typeof SCENARIO_FAULTS)[number];

/**
 * Member flags for frequent snapshots with a short kept tail, so that killed and lagging members
 * come back through InstallSnapshot and restart from a snapshot plus the entries after it.
 */
export function frequentSnapshotArgs(snapshotCount: number | string): string[] {
  return ['--snapshot-count', String(snapshotCount), '--snapshot-catchup-entries', '100'];
}

export interface FaultRunOptions {
  nodes: number;
  seconds: number;
  seed: number;
  faults: Fault[];
  clients?: number;
  keys?: number;
  resultsDir?: string;
  log?: (line: string) => void;
  /** Extra raftkv flags for every member (e.g. --lease-reads). */
  extraArgs?: string[];
  /** Client and peer mTLS on every link (certificates made with openssl for the run). */
  tls?: boolean;
}

export interface FaultRunResult {
  ok: boolean;
  seed: number;
  ops: number;
  unknown: number;
  inserts: number;
  faultsApplied: number;
  violations: string[];
  savedTo?: string;
}

export async function runFaults(o: FaultRunOptions): Promise<FaultRunResult> {
  const log = o.log ?? (() => {});
  const rng = new SeededRand(o.seed);
  const rand = () => rng.next();
  const ports = await freePorts(o.nodes * 2);
  const peerPorts = ports.filter((_, i) => i % 2 === 1);
  const proxies = await ProxyNet.create(peerPorts);
  const events: string[] = [];
  const t0 = performance.now();
  const note = (s: string) => {
    const line = `${((performance.now() - t0) / 1000).toFixed(2)}s ${s}`;
    events.push(line);
    log(line);
  };
  let c: ProcCluster | undefined;
  let certs: TestCerts | undefined;
  let credentials: grpc.ChannelCredentials | undefined;
  let tlsArgs: string[] = [];
  if (o.tls) {
    certs = makeTestCerts();
    const pem = (f: string) => readFileSync(f);
    credentials = grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert));
    const [cert, key, ca] = [certs.server.cert, certs.server.key, certs.ca.cert];
    tlsArgs = [
      '--cert-file', cert, '--key-file', key, '--trusted-ca-file', ca, '--client-cert-auth',
      '--peer-cert-file', cert, '--peer-key-file', key, '--peer-trusted-ca-file', ca, '--peer-client-cert-auth',
    ];
  }
  const scheme = o.tls ? 'https' : 'http';
  const history: Op[] = [];
  const inserts: Insert[] = [];
  let applied = 0;
  const violations: string[] = [];
  try {
    c = await ProcCluster.start({
      size: o.nodes,
      ports,
      heartbeatMs: 50,
      electionMs: 500,
      logLevel: 'info',
      memberEnv: (i) => ({ RAFTKV_PEER_DIAL_MAP: proxies.dialMapFor(i, scheme) }),
      extraArgs: [...tlsArgs, ...(o.extraArgs ?? [])],
      scheme,
      clientCredentials: credentials,
    });
    const cluster = c;
    const until = performance.now() + o.seconds * 1000;
    const work = runWorkload({
      endpoints: cluster.endpoints(),
      clients: o.clients ?? 10,
      keys: o.keys ?? 5,
      until,
      opTimeoutMs: 1500,
      rand,
      history,
      inserts,
      maxOps: 200_000,
      credentials,
    });
    const nemesis = (async () => {
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const all = cluster.members.map((_, i) => i);
      const majority = Math.floor(o.nodes / 2) + 1;
      const leaderIdx = async (): Promise<number | undefined> => {
        try {
          return await cluster.waitForLeader(3000);
        } catch {
          return undefined;
        }
      };
      while (performance.now() < until - 1500) {
        await sleep(500 + rand() * 1500);
        if (performance.now() >= until - 1500) break;
        const fault = pick(o.faults);
        const hold = 700 + rand() * 2000;
        applied++;
        switch (fault) {
          case 'kill': {
            const i = pick(all);
            note(`nemesis: kill -9 m${i + 1}`);
            await cluster.kill(i, 'SIGKILL');
            await sleep(hold);
            cluster.startMember(i);
            note(`nemesis: restart m${i + 1}`);
            break;
          }
          case 'leader': {
            const l = await leaderIdx();
            if (l === undefined) break;
            note(`nemesis: kill -9 leader m${l + 1}`);
            await cluster.kill(l, 'SIGKILL');
            await sleep(hold);
            cluster.startMember(l);
            note(`nemesis: restart m${l + 1}`);
            break;
          }
          case 'restart-all': {
            note('nemesis: kill -9 all members');
            await Promise.all(all.map((i) => cluster.kill(i, 'SIGKILL')));
            await sleep(hold / 2);
            for (const i of all) cluster.startMember(i);
            note('nemesis: restart all members');
            break;
          }
          case 'pause':
          case 'slow-follower':
          case 'slow-majority': {
            let victims: number[];
            if (fault === 'pause') victims = rand() < 0.5 ? [pick(all)] : shuffle(all, rand).slice(0, majority);
            else {
              const l = await leaderIdx();
              const followers = all.filter((i) => i !== l);
              victims = fault === 'slow-follower' ? [pick(followers)] : shuffle(all, rand).slice(0, majority);
            }
            if (fault === 'pause') {
              note(`nemesis: SIGSTOP ${victims.map((i) => `m${i + 1}`).join(' ')}`);
              for (const i of victims) await cluster.kill(i, 'SIGSTOP');
              await sleep(hold);
              for (const i of victims) await cluster.kill(i, 'SIGCONT');
              note('nemesis: SIGCONT');
            } else {
              // A straggler: runs 30 ms out of every 100 ms.
              note(`nemesis: slow ${victims.map((i) => `m${i + 1}`).join(' ')}`);
              const end = performance.now() + hold * 2;
              while (performance.now() < end) {
                for (const i of victims) await cluster.kill(i, 'SIGSTOP');
                await sleep(70);
                for (const i of victims) await cluster.kill(i, 'SIGCONT');
                await sleep(30);
              }
              note('nemesis: slow nodes back to normal');
            }
            break;
          }
          case 'partition':
          case 'isolate-leader':
          case 'oneway': {
            const kind = fault === 'partition' ? pick(['split', 'isolate-leader', 'oneway'] as const) : fault;
            if (kind === 'split') {
              const s = shuffle(all, rand);
              const minority = s.slice(0, o.nodes - majority);
              proxies.partition(minority, s.slice(o.nodes - majority));
              note(`nemesis: partition minority [${minority.map((i) => `m${i + 1}`).join(' ')}]`);
            } else if (kind === 'isolate-leader') {
              const l = await leaderIdx();
              if (l === undefined) break;
              proxies.isolate(l);
              note(`nemesis: isolate leader m${l + 1}`);
            } else {
              const l = (await leaderIdx()) ?? pick(all);
              const to = pick(all.filter((i) => i !== l));
              if (rand() < 0.5) proxies.block(l, to);
              else proxies.block(to, l);
              note(`nemesis: one-way ${proxies.describe()}`);
            }
            await sleep(hold);
            proxies.heal();
            note('nemesis: heal network');
            break;
          }
        }
      }
    })();
    await Promise.all([work, nemesis]);

    // Heal everything and let the cluster settle.
    proxies.heal();
    for (let i = 0; i < o.nodes; i++) {
      if (cluster.isUp(i)) await cluster.kill(i, 'SIGCONT');
      else cluster.startMember(i);
    }
    note('healed: all members up, network whole');
    await cluster.waitForLeader(30_000);
    // Final linearizable reads of every register, recorded like any other operation.
    for (let k = 0; k < (o.keys ?? 5); k++) {
      const key = regKey(k);
      const call = performance.now();
      const r = await eventually(() => cluster.client(k % o.nodes).range(key), 20_000);
      history.push({ client: 1000, key, kind: 'read', out: r.kvs[0]?.value.toString() ?? null, call, ret: performance.now(), status: 'ok' });
    }
    // No acknowledged insert may be missing.
    const present = new Set(
      (await eventually(() => cluster.client(0).range('faults/uniq/', { rangeEnd: Buffer.from('faults/uniq0'), keysOnly: true }), 20_000)).kvs.map((kv) => kv.key.toString()),
    );
    const lost = inserts.filter((i) => i.status === 'ok' && !present.has(i.key));
    if (lost.length > 0) violations.push(`lost ${lost.length} acknowledged inserts, e.g. ${lost.slice(0, 5).map((x) => x.key).join(', ')}`);
    const phantom = [...present].filter((k) => !inserts.some((i) => i.key === k && i.status !== 'fail'));
    if (phantom.length > 0) violations.push(`found ${phantom.length} keys that were never (possibly) written: ${phantom.slice(0, 5).join(', ')}`);

    const lin = checkHistory(history);
    for (const f of lin.failures) {
      violations.push(`NOT linearizable: key ${f.key}; minimal failing window:\n${f.window.map((x) => `    ${describeOp(x)}`).join('\n')}`);
    }
    const mono = checkMonotonicRevisions(history);
    if (mono) violations.push(`revision went backwards: ${mono}`);
  } catch (e) {
    violations.push(`run failed: ${(e as Error).stack ?? String(e)}`);
  }

  const result: FaultRunResult = {
    ok: violations.length === 0,
    seed: o.seed,
    ops: history.length,
    unknown: history.filter((x) => x.status === 'unknown').length,
    inserts: inserts.filter((x) => x.status === 'ok').length,
    faultsApplied: applied,
    violations,
  };
  if (!result.ok && c) {
    const dir = join(o.resultsDir ?? 'test-results/faults', `seed-${o.seed}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'history.json'), JSON.stringify({ options: o, events, history, inserts }, (_k, v) => (v === Infinity ? 'Infinity' : v), 1));
    writeFileSync(join(dir, 'violations.txt'), violations.join('\n\n'));
    for (const m of c.members) writeFileSync(join(dir, `${m.name}.log`), m.log.join(''));
    result.savedTo = dir;
  }
  await c?.destroy().catch(() => {});
  await proxies.close();
  certs?.cleanup();
  return result;
}

function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
