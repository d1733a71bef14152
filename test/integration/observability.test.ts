// /metrics (Prometheus, etcd's metric names) and /health on --listen-metrics-urls.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

it('serves /health and Prometheus /metrics', async () => {
  const [port] = await freePorts(1);
  const c = await ProcCluster.start({ size: 1, extraArgs: ['--listen-metrics-urls', `http://127.0.0.1:${port}`] });
  try {
    await c.client(0).put('m', '1');
    const health = await eventually(async () => {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(r.status, 200);
      return (await r.json()) as { health: string };
    });
    assert.deepEqual(health, { health: 'true' });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /^etcd_server_has_leader 1$/m);
    assert.match(text, /^etcd_server_is_leader 1$/m);
    assert.match(text, /^etcd_disk_wal_fsync_duration_seconds_count [1-9]\d*$/m);
    assert.match(text, /^raftkv_event_loop_delay_p99_seconds /m);
  } finally {
    await c.destroy();
  }
});
