// The gateway's choice of endpoint (etcd's tcpproxy pick): the best SRV priority among active
// endpoints; by weight where weights are given; round robin otherwise; none when all are set aside.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TcpProxy, type ProxyEndpoint, monitorInterval } from '../../src/proxy/tcp-proxy.js';

const quiet = { log() {} };
const ep = (port: number, priority = 0, weight = 0): ProxyEndpoint => ({ host: '127.0.0.1', port, priority, weight });
const ports = (p: TcpProxy, n: number): number[] => Array.from({ length: n }, () => p.pick()?.endpoint.port ?? 0);

it('goes round robin over endpoints without weights, skipping those set aside', () => {
  const p = new TcpProxy({ endpoints: [ep(1), ep(2), ep(3)], monitorIntervalMs: 1000, logger: quiet });
  assert.deepEqual(ports(p, 6), [1, 2, 3, 1, 2, 3]);
  p.pick()!.inactive = true; // port 1 set aside
  assert.deepEqual(new Set(ports(p, 6)), new Set([2, 3]));
  for (let i = 0; i < 3; i++) {
    const r = p.pick();
    if (r) r.inactive = true;
  }
  assert.equal(p.pick(), undefined);
});

it('prefers the best priority, and within it follows the weights', () => {
  // Randomness given: a sequence that walks the whole weight range.
  let n = 0;
  const p = new TcpProxy({
    endpoints: [ep(1, 10, 1), ep(2, 0, 3), ep(3, 0, 1)],
    monitorIntervalMs: 1000,
    logger: quiet,
    randomInt: (max) => n++ % max,
  });
  // Weights 3 and 1 at priority 0: of every 4 picks, three go to port 2 and one to port 3.
  assert.deepEqual(ports(p, 4), [2, 2, 2, 3]);
  // The priority-0 endpoints set aside (the four picks are made before any is): the priority-10 one is used.
  for (const r of [p.pick(), p.pick(), p.pick(), p.pick()]) if (r) r.inactive = true;
  assert.deepEqual(ports(p, 2), [1, 1]);
});

it("dials set-aside endpoints every --retry-delay: 0 is etcd's 5 minutes, and a delay past a timer's reach is capped", () => {
  // Node fires a 0 ms or an overflowing interval at once: the gateway redialled ~900 times a second.
  assert.equal(monitorInterval(0), 300_000);
  assert.equal(monitorInterval(60_000), 60_000);
  assert.equal(monitorInterval(40 * 24 * 3600 * 1000), 2 ** 31 - 1);
});
