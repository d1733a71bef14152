// etcd's v3 snapshot file: what `etcdctl snapshot save` writes and `etcdctl snapshot restore`
// reads (etcd 3.4: clientv3/snapshot/v3_snapshot.go). It is etcd's backend database, a bbolt
// file (./bbolt/), followed by the sha256 of the database bytes (etcd's maintenance server
// appends it to the stream; a file whose length is 32 more than a multiple of 512 has one).
//
// The buckets, as etcd 3.4 writes them (checked against a real etcd 3.4.23 snapshot in
// test/backup/etcd-snapshot.test.ts):
//
//   key              revision key -> mvccpb.KeyValue. The revision key is the main revision
//                    (int64 big-endian), '_', the sub revision (int64 big-endian), plus 't' for
//                    a deletion (tombstone), whose value holds the key alone (mvcc/revision.go,
//                    mvcc/kvstore_txn.go). Byte order of the keys is revision order.
//   lease            lease id (int64 big-endian) -> leasepb.Lease {ID, TTL, RemainingTTL} (lease/lessor.go;
//                    RemainingTTL a lease checkpoint, written only when checkpoints persist)
//   meta             consistent_index (u64 BE: the last applied Raft index), finishedCompactRev
//                    and scheduledCompactRev (revision keys of the compact revision; absent if
//                    never compacted) (mvcc/kvstore.go)
//   members          member id (hex, no padding) -> JSON {"id": decimal, "peerURLs", "isLearner"
//                    (omitted if false), "name", "clientURLs" (omitted if empty)}
//   members_removed  member id (hex) -> "removed"  (etcdserver/api/membership/store.go)
//   auth             authEnabled (one byte 0/1; only once auth was ever enabled or disabled,
//                    as etcd writes it), authRevision (u64 BE)
//   authUsers        name -> authpb.User;  authRoles: name -> authpb.Role   (auth/store.go)
//   alarm            etcdserverpb.AlarmMember (marshalled) -> empty
//   cluster          clusterVersion -> "3.4.0"
//
// Both directions yield to the event loop while they walk the keys (`pause`), so a member can
// build one for `etcdctl snapshot save` while it goes on serving.

import { createHash } from 'node:crypto';
import { Role, User } from '../gen/etcd/auth.js';
import type { Permission_Type } from '../gen/etcd/auth.js';
import { Lease } from '../gen/etcd/lease.js';
import { AlarmMember } from '../gen/etcd/rpc.js';
import type { MemberInfo } from '../gen/raftkv/member.js';
import type { AuthImage } from '../auth/store.js';
import { crc32c } from '../kv/crc32c.js';
import { MvccStore, type Rev, bytesOf, compareRevs, latin1 } from '../kv/mvcc.js';
import type { AlarmsImage } from '../server/alarms.js';
import { BoltReader } from './bbolt/reader.js';
import { type BoltPair, writeBolt } from './bbolt/writer.js';
import { Slab, decodeKeyValue, encodeKeyValue } from './kv-record.js';
import { putRevisionKey, revisionKeySize } from '../util/revision-key.js';
import { runStepsPaused, sortIndexSteps } from '../util/sort-in-steps.js';
import { SliceBudget } from '../util/yield.js';

/** Versions sorted between two pauses while a snapshot is written. */
const SORT_STEP = 8192;

/** Everything an etcd snapshot holds, in raftkv's terms. */
export interface EtcdBackupState {
  /** Keys with their histories, the current and the compact revision. */
  store: MvccStore;
  /** remainingTTL: a persisted lease checkpoint (kv/lessor.ts), 0n or absent for none. */
  leases: Array<{ id: bigint; ttl: bigint; remainingTTL?: bigint }>;
  members: MemberInfo[];
  removed: bigint[];
  auth: AuthImage;
  alarms: AlarmsImage;
  /** The Raft index the state was applied up to (etcd's consistent index). */
  consistentIndex: bigint;
  clusterVersion: string;
}

const SHA256_SIZE = 32;
export const CLUSTER_VERSION = '3.4.0';

// ------------------------------------------------------------------ revision keys

/** etcd's revision key (mvcc/revision.go revToBytes, plus the tombstone marker). */
export function revisionKey(main: bigint, sub: bigint, tombstone: boolean, slab?: Slab): Uint8Array {
  const n = revisionKeySize(tombstone);
  const b = slab ? slab.take(n) : new Uint8Array(n);
  putRevisionKey(b, 0, main, sub, tombstone);
  return b;
}

export function parseRevisionKey(k: Buffer): { main: bigint; sub: bigint; tombstone: boolean } {
  if ((k.length !== 17 && k.length !== 18) || k[8] !== 0x5f || (k.length === 18 && k[17] !== 0x74)) {
    throw new Error(`etcd snapshot: malformed revision key ${k.toString('hex')} in bucket "key"`);
  }
  return { main: k.readBigInt64BE(0), sub: k.readBigInt64BE(9), tombstone: k.length === 18 };
}

const u64be = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
};

// ------------------------------------------------------------------ the trailing sha256

/**
 * The database bytes of a snapshot file, its trailing sha256 checked (etcd's rule: a file
 * whose length is 32 more than a multiple of 512 ends with the sha256 of what precedes it).
 * Throws etcd's errors: "snapshot missing hash but --skip-hash-check=false" and "expected
 * sha256 [...], got [...]".
 */
export function verifiedDatabase(file: Buffer, skipHashCheck = false): Buffer {
  const hasHash = file.length % 512 === SHA256_SIZE;
  if (!hasHash) {
    if (!skipHashCheck) throw new Error('snapshot missing hash but --skip-hash-check=false');
    return file;
  }
  const db = file.subarray(0, file.length - SHA256_SIZE);
  if (!skipHashCheck) {
    const want = file.subarray(file.length - SHA256_SIZE);
    const got = createHash('sha256').update(db).digest();
    // Go's %v of a []byte, as etcd prints it.
    if (!got.equals(want)) throw new Error(`expected sha256 [${[...want].join(' ')}], got [${[...got].join(' ')}]`);
  }
  return db;
}

// ------------------------------------------------------------------ writing

/**
 * The snapshot file of `src` as chunks (the bbolt database, then its sha256 as the last
 * chunk). The store's revision is captured synchronously when this is called (see
 * MvccStore.historiesAsync): capture the other parts in the same turn of the event loop and
 * the file is of one point in time though writes go on while it is built.
 */
export async function encodeEtcdSnapshot(src: EtcdBackupState, pause: () => Promise<void>): Promise<Buffer[]> {
  // Every stored version, then revision order (the "key" bucket's key order).
  const keys: string[] = [];
  const revs: Rev[] = [];
  const captured = src.store.historiesAsync(
    (batch) => {
      for (const k of batch) {
        // Rev objects are never changed once written (new versions are new objects), so
        // holding them past this callback is safe.
        for (const r of k.history) {
          keys.push(k.key);
          revs.push(r);
        }
      }
    },
    pause,
  );
  const { compactRev } = await captured;
  // Every version in revision order (bbolt's key bucket is keyed by revision): a million keys'
  // versions would be a multi-second Array.sort, so sorted in steps with a pause between.
  const order = await runStepsPaused(
    sortIndexSteps(revs.length, (i, j) => compareRevs(revs[i]!, revs[j]!), SORT_STEP),
    pause,
  );
  const slab = new Slab();
  const empty = Buffer.alloc(0);
  function* keyBucket(): Generator<BoltPair> {
    for (let o = 0; o < order.length; o++) {
      const i = order[o]!;
      const r = revs[i]!;
      const tomb = r.version === 0n;
      // A deletion stores the key alone (mvcc/kvstore_txn.go).
      const kv = tomb
        ? { key: bytesOf(keys[i]!), createRevision: 0n, modRevision: 0n, version: 0n, value: empty, lease: 0n }
        : { key: bytesOf(keys[i]!), createRevision: r.create, modRevision: r.mod, version: r.version, value: bytesOf(r.value), lease: r.lease };
      yield [revisionKey(r.mod, BigInt(r.sub), tomb, slab), encodeKeyValue(kv, slab)];
    }
  }
  const authEnabledPair: [Uint8Array, Uint8Array] = [Buffer.from('authEnabled'), Buffer.from([src.auth.enabled ? 1 : 0])];
  const sorted = (pairs: Array<[Uint8Array, Uint8Array]>): BoltPair[] => pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const a = src.auth;
  const meta: Array<[Uint8Array, Uint8Array]> = [[Buffer.from('consistent_index'), u64be(src.consistentIndex)]];
  if (compactRev > 0n) {
    meta.push([Buffer.from('finishedCompactRev'), revisionKey(compactRev, 0n, false)]);
    meta.push([Buffer.from('scheduledCompactRev'), revisionKey(compactRev, 0n, false)]);
  }
  const buckets: Array<[string, Iterable<BoltPair>]> = [
    ['alarm', sorted(src.alarms.map(([id, t]) => [Buffer.from(AlarmMember.encode({ memberID: BigInt(id), alarm: t }).finish()), Buffer.alloc(0)]))],
    // etcd writes authEnabled only when auth is enabled or disabled, never in a new database.
    ['auth', sorted([...((a.switched ?? a.enabled) ? [authEnabledPair] : []), [Buffer.from('authRevision'), u64be(BigInt(a.revision))]])],
    [
      'authRoles',
      sorted(
        a.roles.map((r) => [
          Buffer.from(r.name),
          Buffer.from(
            Role.encode({
              name: Buffer.from(r.name),
              keyPermission: r.perms.map(([t, k, e]) => ({ permType: t as Permission_Type, key: Buffer.from(k, 'base64'), rangeEnd: Buffer.from(e, 'base64') })),
            }).finish(),
          ),
        ]),
      ),
    ],
    [
      'authUsers',
      sorted(
        a.users.map((u) => [
          Buffer.from(u.name),
          Buffer.from(
            User.encode({ name: Buffer.from(u.name), password: Buffer.from(u.password), roles: [...u.roles], options: { noPassword: u.noPassword ?? false } }).finish(),
          ),
        ]),
      ),
    ],
    ['cluster', [[Buffer.from('clusterVersion'), Buffer.from(src.clusterVersion)]]],
    ['key', keyBucket()],
    [
      'lease',
      sorted(src.leases.map((l) => [u64be(BigInt.asUintN(64, l.id)), Buffer.from(Lease.encode({ ID: l.id, TTL: l.ttl, RemainingTTL: l.remainingTTL ?? 0n }).finish())])),
    ],
    ['members', sorted(src.members.map((m) => [Buffer.from(m.id.toString(16)), Buffer.from(memberJson(m))]))],
    ['members_removed', sorted(src.removed.map((id) => [Buffer.from(id.toString(16)), Buffer.from('removed')]))],
    ['meta', sorted(meta)],
  ];
  const chunks = await writeBolt(
    { entries: buckets.map(([name, entries]): BoltPair => [Buffer.from(name), { entries }]) },
    { pause },
  );
  // Hashing hundreds of MiB takes a while: a yield every MiB or so (chunks are pages, of 4 KiB
  // or, holding a large value, of a MiB and more).
  const h = createHash('sha256');
  const budget = new SliceBudget(Infinity);
  for (const c of chunks) {
    h.update(c);
    if (budget.spend(c.length)) await pause();
  }
  chunks.push(h.digest());
  return chunks;
}

/** etcd's JSON of a member (membership.Member; its id is a JSON number, a uint64). */
function memberJson(m: MemberInfo): string {
  let s = `{"id":${m.id.toString()},"peerURLs":${JSON.stringify(m.peerUrls)}`;
  if (m.isLearner) s += ',"isLearner":true';
  if (m.name) s += `,"name":${JSON.stringify(m.name)}`;
  if (m.clientUrls.length > 0) s += `,"clientURLs":${JSON.stringify(m.clientUrls)}`;
  return `${s}}`;
}

function parseMemberJson(v: Buffer): MemberInfo {
  const text = v.toString();
  // The id is a uint64: JSON.parse would round it, so it is taken from the text.
  const id = /"id"\s*:\s*(\d+)/.exec(text);
  if (!id) throw new Error(`etcd snapshot: member without an id: ${text}`);
  const j = JSON.parse(text) as { peerURLs?: string[]; isLearner?: boolean; name?: string; clientURLs?: string[] };
  return { id: BigInt(id[1]!), name: j.name ?? '', peerUrls: j.peerURLs ?? [], clientUrls: j.clientURLs ?? [], isLearner: j.isLearner ?? false };
}

// ------------------------------------------------------------------ reading

/**
 * Parses a snapshot file (its sha256 checked unless `skipHashCheck`) into the state it holds.
 * A damaged file throws; nothing is returned half-read.
 */
export async function decodeEtcdSnapshot(file: Buffer, pause: () => Promise<void>, skipHashCheck = false): Promise<EtcdBackupState> {
  const db = BoltReader.open(verifiedDatabase(file, skipHashCheck));
  const need = (name: string) => {
    const b = db.bucket(name);
    if (!b) throw new Error(`etcd snapshot: no "${name}" bucket (not an etcd v3 snapshot?)`);
    return b;
  };
  const optional = (name: string) => db.bucket(name);

  // key: versions in revision order, grouped by key.
  const histories = new Map<string, Rev[]>();
  let lastRev = 1n;
  await need('key').forEachAsync((e) => {
    const { main, sub, tombstone } = parseRevisionKey(e.key);
    // Keys and values become the store's latin1 strings (copies: the file's buffer is freed).
    const kv = decodeKeyValue(e.value);
    const ks = latin1(kv.key);
    let h = histories.get(ks);
    if (!h) histories.set(ks, (h = []));
    if (sub > 0xffffffffn) throw new Error(`etcd snapshot: sub revision ${sub} too large`);
    h.push(
      tombstone
        ? { mod: main, sub: Number(sub), create: 0n, version: 0n, value: '', lease: 0n }
        : { mod: main, sub: Number(sub), create: kv.createRevision, version: kv.version, value: latin1(kv.value), lease: kv.lease },
    );
    if (main > lastRev) lastRev = main;
  }, pause);
  const store = new MvccStore();
  let n = 0;
  for (const [key, history] of histories) {
    store.loadHistory(key, history);
    if (++n % 5000 === 0) await pause();
  }

  const meta = need('meta');
  const metaRev = (name: string): bigint => {
    const v = meta.get(name);
    return v ? parseRevisionKey(v).main : -1n;
  };
  const finished = metaRev('finishedCompactRev');
  const scheduled = metaRev('scheduledCompactRev');
  // etcd's kvstore.restore: the current revision is at least the compact revision.
  store.currentRev = lastRev > finished ? lastRev : finished > 0n ? finished : 1n;
  store.compactRev = finished;
  // A compaction scheduled but not finished when the snapshot was taken: etcd finishes it
  // when it restores; so does this.
  if (scheduled > finished && scheduled <= store.currentRev) store.compact(scheduled);
  const ci = meta.get('consistent_index');

  const leases: EtcdBackupState['leases'] = [];
  for (const e of optional('lease')?.entries() ?? []) {
    const l = Lease.decode(e.value);
    leases.push({ id: l.ID, ttl: l.TTL, remainingTTL: l.RemainingTTL });
  }

  const members: MemberInfo[] = [];
  for (const e of optional('members')?.entries() ?? []) members.push(parseMemberJson(e.value));
  const removed: bigint[] = [];
  for (const e of optional('members_removed')?.entries() ?? []) removed.push(BigInt(`0x${e.key.toString()}`));

  const auth: AuthImage = { enabled: false, revision: '1', users: [], roles: [] };
  const authB = optional('auth');
  if (authB) {
    const en = authB.get('authEnabled');
    auth.enabled = en !== undefined && en.length > 0 && en[0] === 1;
    if (en !== undefined) auth.switched = true;
    const rev = authB.get('authRevision');
    if (rev && rev.length === 8) auth.revision = rev.readBigUInt64BE(0).toString();
  }
  for (const e of optional('authUsers')?.entries() ?? []) {
    const u = User.decode(e.value);
    auth.users.push({ name: Buffer.from(u.name).toString(), password: Buffer.from(u.password).toString(), roles: [...u.roles], noPassword: u.options?.noPassword ?? false });
  }
  for (const e of optional('authRoles')?.entries() ?? []) {
    const r = Role.decode(e.value);
    auth.roles.push({
      name: Buffer.from(r.name).toString(),
      perms: r.keyPermission.map((p): [number, string, string] => [p.permType, Buffer.from(p.key).toString('base64'), Buffer.from(p.rangeEnd).toString('base64')]),
    });
  }

  const alarms: AlarmsImage = [];
  for (const e of optional('alarm')?.entries() ?? []) {
    const a = AlarmMember.decode(e.key);
    alarms.push([a.memberID.toString(), a.alarm]);
  }
  const cv = optional('cluster')?.get('clusterVersion');
  return {
    store,
    leases,
    members,
    removed,
    auth,
    alarms,
    consistentIndex: ci && ci.length === 8 ? ci.readBigUInt64BE(0) : 0n,
    clusterVersion: cv ? cv.toString() : CLUSTER_VERSION,
  };
}

// ------------------------------------------------------------------ status

export interface SnapshotStatus {
  /** etcdctl's hash: CRC-32C of every bucket name, key and value, in order. */
  hash: number;
  /** The main revision of the last key in the "key" bucket. */
  revision: bigint;
  /** Pairs in all buckets. */
  totalKey: number;
  /** The database's size (high water mark × page size). */
  totalSize: number;
}

/** What `etcdctl snapshot status` reports of a snapshot file (the sha256 is not checked, as there). */
export async function snapshotStatus(file: Buffer, pause: () => Promise<void>): Promise<SnapshotStatus> {
  const db = BoltReader.open(file.length % 512 === SHA256_SIZE ? file.subarray(0, file.length - SHA256_SIZE) : file);
  let crc = 0;
  let revision = 0n;
  let totalKey = 0;
  for (const b of db.root().entries()) {
    if (!b.isBucket) throw new Error(`cannot get hash of bucket ${b.key.toString()}`);
    crc = crc32c(b.key, crc);
    const isKey = b.key.toString() === 'key';
    await db.root().child(b.value).forEachAsync((e) => {
      crc = crc32c(e.value, crc32c(e.key, crc));
      if (isKey) revision = parseRevisionKey(e.key).main;
      totalKey++;
    }, pause);
  }
  return { hash: crc, revision, totalKey, totalSize: Number(db.meta.pgid) * db.pageSize };
}
