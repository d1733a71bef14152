// The leader's heartbeats timed as etcd times them: late when more than two heartbeat intervals
// after the previous one to the same peer, counted and logged with etcd's warning; a new term of
// leadership starts afresh; other messages are not heartbeats.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MessageType, newMessage } from '../../src/raft/index.js';
import { HeartbeatTimeliness } from '../../src/server/heartbeat-timeliness.js';

it('counts a heartbeat sent more than two intervals after the last one to that peer', () => {
  let now = 0;
  const warnings: string[] = [];
  const h = new HeartbeatTimeliness(100, () => now, (m) => warnings.push(m));
  const hb = (to: bigint) => newMessage(MessageType.MsgHeartbeat, { to, from: 1n, term: 2 });
  const app = (to: bigint) => newMessage(MessageType.MsgApp, { to, from: 1n, term: 2 });
  h.sending([hb(2n), hb(3n)]);
  now = 100;
  h.sending([hb(2n), hb(3n), app(2n)]);
  now = 300; // exactly two intervals: on time
  h.sending([hb(2n)]);
  assert.equal(h.late, 0);
  now = 550; // 250 ms after the last to 2, 450 after the last to 3
  h.sending([hb(2n), hb(3n)]);
  assert.equal(h.late, 2);
  assert.match(warnings[0]!, /leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk \(to 2, heartbeat-interval 100ms, expected-duration 200ms, exceeded-duration 50ms\)/);
  now = 5000;
  h.sending([app(2n)]);
  assert.equal(h.late, 2, 'appends are not heartbeats');
  h.reset(); // leader again, in a later term
  h.sending([hb(2n)]);
  assert.equal(h.late, 2);
});
