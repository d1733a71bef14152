// etcd's access controller on the client port's HTTP side: --host-whitelist refuses plaintext
// requests for another Host with 421 (DNS rebinding, CVE-2018-5702), --cors decides which
// origin gets the CORS headers.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AccessController, hostnameOf, rebindingRefusal } from '../../src/api/access-controller.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const run = promisify(execFile);

describe('the access controller (unit)', () => {
  it("reads the Host header as Go's GetHostname, and allows any host or origin for '*' or an empty list", () => {
    assert.deepEqual(['example.com:2379', 'example.com', '[::1]:2379', '::1', '10.0.0.1:80'].map(hostnameOf), ['example.com', 'example.com', '::1', '::1', '10.0.0.1']);
    const open = new AccessController(['*'], []);
    assert.equal(open.hostWhitelisted('anything'), true);
    assert.equal(open.originAllowed('https://anywhere'), true);
    const strict = new AccessController(['https://app.example:443'], ['example.com']);
    assert.deepEqual([strict.hostWhitelisted('example.com'), strict.hostWhitelisted('127.0.0.1')], [true, false]);
    assert.deepEqual([strict.originAllowed('https://app.example:443'), strict.originAllowed('https://evil.example')], [true, false]);
  });
});

describe('--host-whitelist and --cors on a member', () => {
  let c: ProcCluster;
  const curl = async (path: string, headers: string[] = [], extra: string[] = []) => {
    const args = ['-sS', '-i', '--max-time', '5', ...headers.flatMap((h) => ['-H', h]), ...extra, `http://127.0.0.1:${c.members[0]!.clientPort}${path}`];
    const { stdout } = await run('curl', args);
    const [head, ...body] = stdout.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    const headersOut = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { status: Number(lines[0]!.split(' ')[1]), headers: headersOut, body: body.join('\r\n\r\n') };
  };

  before(async () => {
    c = await ProcCluster.start({ size: 1, extraArgs: ['--host-whitelist', 'example.com,localhost', '--cors', 'https://app.example:443'] });
  });
  after(async () => {
    await c?.destroy();
  });

  it('a plaintext request for a Host not whitelisted gets 421 and etcd\'s text, and is logged; a whitelisted one is served', async () => {
    const refused = await curl('/version');
    assert.equal(refused.status, 421);
    assert.equal(refused.body, `${rebindingRefusal('127.0.0.1')}\n`);
    assert.equal((await curl('/v3/kv/range', [], ['-X', 'POST', '-d', '{"key":"YQ=="}'])).status, 421);
    await eventually(async () => assert.match(c.members[0]!.log.join(''), /rejecting HTTP request to prevent DNS rebinding attacks/));
    const served = await curl('/version', ['Host: example.com:2379']);
    assert.equal(served.status, 200);
    assert.match(served.body, /"etcdserver"/);
    assert.equal(Number(served.headers['content-length']), Buffer.byteLength(served.body), 'sent with its length, as Go sends it, not chunked');
    assert.equal((await curl('/v3/kv/range', ['Host: localhost'], ['-X', 'POST', '-d', '{"key":"YQ=="}'])).status, 200);
  });

  it('CORS headers only for a listed origin; OPTIONS answered 200', async () => {
    // etcd 3.4 compares the Origin with the --cors URLs as written (their port included).
    const listed = await curl('/version', ['Host: example.com', 'Origin: https://app.example:443']);
    assert.equal(listed.headers['access-control-allow-origin'], 'https://app.example:443');
    assert.equal(listed.headers['access-control-allow-methods'], 'POST, GET, OPTIONS, PUT, DELETE');
    const other = await curl('/version', ['Host: example.com', 'Origin: https://evil.example']);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const preflight = await curl('/v3/kv/put', ['Host: example.com', 'Origin: https://app.example:443'], ['-X', 'OPTIONS']);
    assert.deepEqual([preflight.status, preflight.headers['access-control-allow-origin']], [200, 'https://app.example:443']);
  });

  it('gRPC on the same port is not an HTTP request: no Host check', async () => {
    await c.client(0).put('k', 'v');
    assert.equal((await c.client(0).range('k')).kvs.length, 1);
  });
});
