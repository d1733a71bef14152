// The JSON gateway over WebSockets (src/api/gateway/websocket.ts), as etcd 3.4's wsproxy serves
// it, against a real member process, with clients nobody here wrote: the `ws` package and a
// headless Chromium. The messages expected are what etcd 3.4 sent to the same script (ids and
// revisions aside). Also: upgrades raftkv does not take (h2c from `curl --http2`, a WebSocket
// off the gateway's paths) are served as the plain requests they also are.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import puppeteer from 'puppeteer-core';
import WebSocket from 'ws';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const curlAvailable = spawnSync('curl', ['--version']).status === 0;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

// What the page's functions use (they run in the browser; the DOM's types are not in this
// project's lib).
interface PageWebSocket {
  onmessage: (m: { data: unknown }) => void;
  onopen: () => void;
  send(text: string): void;
}
declare const window: { got: string[]; WebSocket: new (url: string) => PageWebSocket };
declare const location: { host: string };

interface Conn {
  ws: WebSocket;
  got: Array<Record<string, any>>;
  closed: Promise<number>;
}

async function connect(url: string, protocols?: string[]): Promise<Conn> {
  const ws = new WebSocket(url, protocols);
  const got: Conn['got'] = [];
  ws.on('message', (m) => got.push(JSON.parse(m.toString())));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, got, closed };
}

describe('JSON gateway over WebSockets (etcd\'s wsproxy)', () => {
  let c: ProcCluster;
  let base: string;
  before(async () => {
    c = await ProcCluster.start({ size: 1 });
    base = `ws://${c.endpoint(0)}`;
  });
  after(async () => {
    await c?.destroy();
  });

  it('answers a unary route with one message, then closes', async () => {
    const p = await connect(`${base}/v3/kv/put`);
    p.ws.send(JSON.stringify({ key: b64('ws/a'), value: b64('1') }));
    assert.equal(await p.closed, 1000);
    assert.equal(p.got.length, 1);
    assert.ok(p.got[0]!['header']?.revision, JSON.stringify(p.got));
    assert.equal(await c.client(0).get('ws/a'), '1');
    // /v3beta/ is the same route, as in etcd 3.4.
    const r = await connect(`${base}/v3beta/kv/range`);
    r.ws.send(JSON.stringify({ key: b64('ws/a') }));
    await r.closed;
    assert.equal(r.got[0]!['kvs']?.[0]?.value, b64('1'));
  });

  it('streams a watch both ways: creates and cancels in, events out; a client that leaves ends it', async () => {
    const metric = async (): Promise<number> => {
      const text = await (await fetch(`http://${c.endpoint(0)}/metrics`)).text();
      return Number(/^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text)?.[1]);
    };
    const w = await connect(`${base}/v3/watch`);
    w.ws.send(JSON.stringify({ create_request: { key: b64('ws/w'), prefix: false } }));
    await eventually(async () => assert.equal(w.got.length, 1));
    assert.equal(w.got[0]!['result']?.created, true);
    const id = w.got[0]!['result']?.watch_id ?? '0';
    await c.client(0).put('ws/w', 'x');
    await eventually(async () => assert.equal(w.got.length, 2));
    assert.deepEqual(w.got[1]!['result']?.events?.map((e: { kv: { value: string } }) => e.kv.value), [b64('x')]);
    // A second watch on the same connection, then the first one cancelled.
    w.ws.send(JSON.stringify({ create_request: { key: b64('ws/w2') } }));
    await eventually(async () => assert.equal(w.got.length, 3));
    w.ws.send(JSON.stringify({ cancel_request: { watch_id: id } }));
    await eventually(async () => assert.equal(w.got.length, 4));
    assert.equal(w.got[3]!['result']?.canceled, true);
    assert.equal(await metric(), 1);
    w.ws.close();
    await w.closed;
    await eventually(async () => assert.equal(await metric(), 0));
  });

  it('answers the Bearer subprotocol, and passes its token on as etcd does', async () => {
    const p = await connect(`${base}/v3/kv/range`, ['Bearer', 'not-a-token']);
    assert.equal(p.ws.protocol, 'Bearer');
    p.ws.send(JSON.stringify({ key: b64('ws/a') }));
    await p.closed;
    // Auth is off, but etcd 3.4 checks a token all the same (checked with etcd 3.4.23): this
    // one it does not know.
    assert.deepEqual([p.got[0]!['error'], p.got[0]!['code']], ['etcdserver: invalid auth token', 16], JSON.stringify(p.got));
  });

  it('a bad request is its JSON error line', async () => {
    const p = await connect(`${base}/v3/kv/range`);
    p.ws.send('{"key": 5');
    await p.closed;
    assert.equal(p.got[0]!['code'], 3, JSON.stringify(p.got));
  });

  it('serves an upgrade it does not take as the plain request it also is', { skip: !curlAvailable && 'curl is not installed' }, async () => {
    const url = `http://${c.endpoint(0)}`;
    // curl --http2 on http:// asks for h2c with its POST (and body).
    const { stdout: h2c } = await run('curl', ['-s', '--http2', '-X', 'POST', `${url}/v3/kv/range`, '-d', JSON.stringify({ key: b64('ws/a') })]);
    assert.equal(JSON.parse(h2c).kvs[0].value, b64('1'));
    const { stdout: health } = await run('curl', ['-s', '-H', 'Upgrade: websocket', '-H', 'Connection: Upgrade', `${url}/health`]);
    assert.deepEqual(JSON.parse(health), { health: 'true' });
    // And the connection goes on as HTTP/1.1: two requests on it, the first one an upgrade.
    const { stdout: two } = await run('curl', ['-s', '-H', 'Upgrade: h2c', '-H', 'Connection: Upgrade', `${url}/version`, '--next', `${url}/health`]);
    assert.match(two, /"etcdserver":.*\{"health":"true"\}/s);
  });

  it('a browser watches a key through it', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, async () => {
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://${c.endpoint(0)}/version`);
      await page.evaluate((key: string) => {
        window.got = [];
        const ws = new window.WebSocket(`ws://${location.host}/v3/watch`);
        ws.onmessage = (m) => window.got.push(String(m.data));
        ws.onopen = () => ws.send(JSON.stringify({ create_request: { key } }));
      }, b64('ws/browser'));
      await page.waitForFunction(() => window.got.length === 1);
      await c.client(0).put('ws/browser', 'seen');
      await page.waitForFunction(() => window.got.length === 2);
      const got = await page.evaluate(() => window.got);
      assert.equal(JSON.parse(got[1]!).result.events[0].kv.value, b64('seen'));
    } finally {
      await browser.close();
    }
  });
});
