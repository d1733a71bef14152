// etcd's checks of member add and promote (src/server/membership-changes.ts), in etcd's order
// and with its member ids, against a cluster view whose clock and progress the test sets.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MemberInfo } from '../../src/gen/raftkv/member.js';
import { type ClusterView, MembershipChanges } from '../../src/server/membership-changes.js';
import { Membership } from '../../src/server/membership.js';

function cluster(strictReconfigCheck = true): { view: ClusterView & { now: number; match: Map<bigint, number>; up: boolean }; changes: MembershipChanges } {
  const membership = new Membership();
  membership.add({ id: 1n, name: 'n1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: [], isLearner: false });
  const view = {
    id: 1n,
    membership,
    now: 1_700_000_000_250,
    match: new Map<bigint, number>([[1n, 100]]),
    strictReconfigCheck,
    up: true,
    recentlyActive(id: bigint) {
      return id === 1n || this.up;
    },
    matchOf(id: bigint) {
      return this.match.get(id);
    },
    wallNow() {
      return this.now;
    },
    async proposeConfChange(cc: { context: Uint8Array }) {
      // Applied at once, as the member list would be once committed.
      if (cc.context.length > 0) membership.add(MemberInfo.decode(cc.context));
    },
  };
  return { view, changes: new MembershipChanges(view) };
}

const fails = (message: string) => (e: Error) => e.message === message;

describe('member add and promote as etcd checks them', () => {
  it("an added member's id is etcd's: sha1 of the sorted URLs and the second; the same URLs within a second are the same id", async () => {
    const { view, changes } = cluster();
    const m = await changes.add(['http://127.0.0.1:80'], true);
    const want = createHash('sha1').update('http://127.0.0.1:80' + '1700000000').digest().readBigUInt64BE(0);
    assert.equal(m?.ID, want);
    // etcd's apply checks the id before the URLs: within the second it is the id that exists.
    await assert.rejects(changes.add(['http://127.0.0.1:80'], true), fails('etcdserver: member ID already exist'));
    view.now += 1000;
    await assert.rejects(changes.add(['http://127.0.0.1:80'], true), fails('etcdserver: Peer URLs already exists'));
  });

  it('URLs etcd takes but no member could dial are refused; the scheme is kept lower-cased, as etcd keeps it', async () => {
    const { changes } = cluster();
    for (const bad of ['http://127.0.0.1:65536', 'http://:1', 'http://[zz]:1', 'http://a b:1']) {
      await assert.rejects(changes.add([bad], true), fails('etcdserver: given member URLs are invalid'), bad);
    }
    const m = await changes.add(['HTTP://127.0.0.1:5'], true);
    assert.deepEqual(m?.peerURLs, ['http://127.0.0.1:5']);
  });

  it('promote: whether the member has caught up comes first, then whether it is a learner', async () => {
    const { view, changes } = cluster();
    const voter = await changes.add(['http://127.0.0.1:2381'], false);
    view.match.set(voter!.ID, 0);
    await assert.rejects(changes.promote(voter!.ID), fails('etcdserver: can only promote a learner member which is in sync with leader'));
    view.match.set(voter!.ID, 100);
    await assert.rejects(changes.promote(voter!.ID), fails('etcdserver: can only promote a learner member'));
    await assert.rejects(changes.promote(12345n), fails('etcdserver: member not found'));
    // Only a leader knows the progress: a member that stopped leading says so (its caller asks again).
    view.match.clear();
    await assert.rejects(changes.promote(voter!.ID), fails('etcdserver: not leader'));
  });

  for (const strict of [true, false]) {
    it(`--strict-reconfig-check=${strict}: ${strict ? 'refuses' : 'allows'} changes that endanger the quorum, as etcd's`, async () => {
      const { view, changes } = cluster(strict);
      // A voter that never started (no name published): a third one would leave 1 of 3 started.
      const unstarted = await changes.add(['http://127.0.0.1:2381'], false);
      const third = changes.add(['http://127.0.0.1:2382'], false);
      if (strict) await assert.rejects(third, fails('etcdserver: re-configuration failed due to not enough started members'));
      else assert.ok(await third);
      // A peer this member has not heard from: adding needs every voter up, removing a quorum.
      view.up = false;
      const fourth = changes.add(['http://127.0.0.1:2383'], true);
      if (strict) await assert.rejects(fourth, fails('etcdserver: unhealthy cluster'));
      else assert.ok(await fourth);
      const removal = changes.remove(1n);
      if (strict) await assert.rejects(removal, fails('etcdserver: re-configuration failed due to not enough started members'));
      else await removal;
      assert.ok(unstarted);
    });
  }
});
