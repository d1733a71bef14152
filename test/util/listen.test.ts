// listenAt: a failed accept after the server listens (EMFILE) is a warning, not a crash.

import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { describe, it } from 'node:test';
import { listenAt } from '../../src/util/listen.js';

describe('listenAt', () => {
  it('resolves with the port bound, and an accept error later is a process warning while the server goes on', async () => {
    const server = createServer((s) => s.end('hi'));
    const port = await listenAt(server, 'http://127.0.0.1:0');
    assert.ok(port > 0);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      // What Node emits when accept() fails (net.js onconnection): no listener would make it uncaught.
      server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, ['AcceptError: accept error on http://127.0.0.1:0: accept EMFILE']);
      const reply = await new Promise<string>((resolve, reject) => {
        const c = connect(port, '127.0.0.1');
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      assert.equal(reply, 'hi');
    } finally {
      process.off('warning', onWarning);
      server.close();
    }
  });
});
