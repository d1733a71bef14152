// The live dashboard on --listen-metrics-urls, in a real browser: headless Chromium (Debian's
// `chromium`, driven by puppeteer-core) loads a member's page of a real 3-member cluster, sees
// the members and the leader, and, after the leader is killed, the new leader and the old one
// unreachable — without reloading (server-sent events). Takes a screenshot, which becomes the
// README's docs/dashboard.png with RAFTKV_UPDATE_SCREENSHOT=1 (otherwise it goes to a temp
// file, so that test runs leave the tree alone). Without a browser the test fails and says so. The cluster view also works over
// client mTLS, and a frozen member shows as unreachable instead of hanging the view.

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { it } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { ClusterView } from '../../src/server/dashboard/cluster-view.js';
import { makeTestCerts, memberTlsArgs } from '../support/certs.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';
import * as grpc from '@grpc/grpc-js';
import { AlarmRequest_AlarmAction, AlarmType } from '../../src/gen/etcd/rpc.js';

// The functions given to page.waitForFunction / $$eval run in the page (puppeteer sends their
// source); the DOM's types are not in this project's lib, so the little they use is declared.
interface PageElement {
  dataset: Record<string, string | undefined>;
  classList: { contains(c: string): boolean };
  textContent: string | null;
}
declare const document: { querySelectorAll(selector: string): Iterable<PageElement> };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.RAFTKV_UPDATE_SCREENSHOT === '1' ? resolve('docs/dashboard.png') : join(tmpdir(), `raftkv-dashboard-${process.pid}.png`);

async function launchBrowser(): Promise<Browser> {
  try {
    // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    return await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  } catch (e) {
    throw new Error(`cannot start headless Chromium at ${CHROMIUM} (install Debian's chromium package, or set CHROMIUM_PATH): ${(e as Error).message}`);
  }
}

/**
 * Waits until every member serves its metrics URL: a member answers clients (what ProcCluster
 * waits for) a moment before it listens there.
 */
async function metricsServed(c: ProcCluster, ports: number[]): Promise<void> {
  for (const p of ports) {
    try {
      await eventually(async () => assert.equal((await fetch(`http://127.0.0.1:${p}/health`, { signal: AbortSignal.timeout(5000) })).status, 200));
    } catch (e) {
      // fetch's own message ("fetch failed") hides why: the cause, and the members' side.
      const cause = (e as { cause?: unknown }).cause;
      throw new Error(`port ${p} does not serve /health: ${(e as Error).message}${cause ? ` (${String(cause)})` : ''}\n${c.logs()}`);
    }
  }
}

/** The members table as the page shows it. */
function tableOf(page: Page): Promise<Array<{ name: string; role: string; reachable: string; leader: boolean }>> {
  return page.$$eval('#members tbody tr', (rows) =>
    rows.map((r) => {
      const el = r as unknown as PageElement;
      return { name: el.dataset.name ?? '', role: el.dataset.role ?? '', reachable: el.dataset.reachable ?? '', leader: el.classList.contains('leader') };
    }),
  );
}

/** Puts and gets on every running member in turn until `stop` is set: every page's charts move. */
async function load(c: ProcCluster, stop: { done: boolean }): Promise<void> {
  for (let i = 0; !stop.done; i++) {
    const up = c.members.map((_, j) => j).filter((j) => c.isUp(j));
    const member = up[i % up.length]!;
    try {
      await c.client(member).put(`load/${i % 50}`, `value-${i}`);
      await c.client(member).range(`load/${i % 50}`);
    } catch {
      await sleep(50); // during the election
    }
  }
}

it('shows the cluster live in a browser and follows a leader change', async () => {
  const metricsPorts = await freePorts(3);
  const c = await ProcCluster.start({ size: 3, memberArgs: (i) => ['--listen-metrics-urls', `http://127.0.0.1:${metricsPorts[i]}`] });
  let browser: Browser | undefined;
  const stop = { done: false };
  let loading: Promise<void> | undefined;
  try {
    await metricsServed(c, metricsPorts);
    const leader = await c.waitForLeader();
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    /** Opens a member's page; waits for all three members, one of them the highlighted leader; returns its name. */
    const open = async (i: number): Promise<string> => {
      await page.goto(`http://127.0.0.1:${metricsPorts[i]}/`, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(
        () => {
          const rows = [...document.querySelectorAll('#members tbody tr')];
          return rows.length === 3 && rows.every((r) => r.dataset.reachable === 'true') && rows.some((r) => r.dataset.role === 'leader' && r.classList.contains('leader'));
        },
        { timeout: 20_000 },
      );
      return (await tableOf(page)).find((r) => r.leader)!.name;
    };
    // The page of a member that stays up (should leadership have moved meanwhile, another one's).
    let viewer = (leader + 1) % 3;
    let leaderName = await open(viewer);
    if (leaderName === c.members[viewer]!.name) {
      viewer = (viewer + 1) % 3;
      leaderName = await open(viewer);
    }
    assert.notEqual(leaderName, c.members[viewer]!.name);
    assert.deepEqual((await tableOf(page)).map((r) => r.name).sort(), ['m1', 'm2', 'm3']);
    assert.equal(await page.$eval('#leader-name', (e) => e.textContent), leaderName);
    assert.equal(await page.$eval('#conn', (e) => e.textContent), 'live');
    // uPlot came from the member (no CDN): the charts exist.
    assert.equal(await page.$$eval('.uplot', (els) => els.length), 4);

    loading = load(c, stop);
    await sleep(4000);

    // Kill the leader by pid; the same page (no reload) shows the new one.
    await c.kill(c.members.findIndex((m) => m.name === leaderName));
    await page.waitForFunction(
      (old) => {
        const rows = [...document.querySelectorAll('#members tbody tr')];
        const lead = rows.find((r) => r.dataset.role === 'leader' && r.classList.contains('leader'));
        const gone = rows.find((r) => r.dataset.name === old);
        return lead !== undefined && lead.dataset.name !== old && gone?.dataset.reachable === 'false';
      },
      { timeout: 20_000 },
      leaderName,
    );
    const table = await tableOf(page);
    const newLeader = table.find((r) => r.leader)!.name;
    assert.notEqual(newLeader, leaderName);
    assert.equal(await page.$eval('#leader-name', (e) => e.textContent), newLeader);
    // The event list tells of the election.
    await page.waitForFunction((name) => [...document.querySelectorAll('#events li')].some((li) => li.textContent?.includes(`${name} became leader`)), { timeout: 10_000 }, newLeader);

    await sleep(3000);
    // Every chart of the viewing member has points from the load (it served a share of it).
    const points = await page.evaluate('state.points.filter((p) => p.putP99 !== null && p.readsPerSec > 0).length');
    assert.ok(Number(points) > 0, 'no put latency or reads in the charts');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(readFileSync(SCREENSHOT).length > 10_000, 'screenshot written');
    if (process.env.RAFTKV_UPDATE_SCREENSHOT !== '1') rmSync(SCREENSHOT);
    assert.deepEqual(pageErrors, []);
  } finally {
    stop.done = true;
    await loading;
    await browser?.close();
    await c.destroy();
  }
});

it('sees the members over client mTLS, and a frozen member as unreachable without hanging', async () => {
  const certs = makeTestCerts();
  const metricsPorts = await freePorts(3);
  const pem = (f: string) => readFileSync(f);
  const c = await ProcCluster.start({
    size: 3,
    scheme: 'https',
    clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
    extraArgs: memberTlsArgs(certs),
    memberArgs: (i) => ['--listen-metrics-urls', `http://127.0.0.1:${metricsPorts[i]}`],
  });
  // A view that does not come within the deadline fails the test (it must never hang).
  const view = async (i: number): Promise<ClusterView> => (await (await fetch(`http://127.0.0.1:${metricsPorts[i]}/dashboard/state.json`, { signal: AbortSignal.timeout(5000) })).json()) as ClusterView;
  try {
    await metricsServed(c, metricsPorts);
    const viewer = 0;
    const all = await eventually(async () => {
      const v = await view(viewer);
      assert.equal(v.members.length, 3);
      assert.ok(v.members.every((m) => m.reachable && m.clientUrl.startsWith('https://')), JSON.stringify(v.members));
      // The leader this member knows is the one that says it leads.
      assert.ok(v.leader !== null);
      assert.equal(v.members.find((m) => m.id === v.leader)!.role, 'leader');
      return v;
    });

    // Alarms are listed (NOSPACE raised for the leader through the API, as etcd's quota would).
    await new Promise((res, rej) =>
      c.client(viewer).maint.alarm(
        { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: BigInt(`0x${all.leader}`), alarm: AlarmType.NOSPACE },
        (e: grpc.ServiceError | null) => (e ? rej(e) : res(undefined)),
      ),
    );
    await eventually(async () => assert.deepEqual((await view(viewer)).alarms, [{ member: all.leader, alarm: 'NOSPACE' }]));

    // SIGSTOP a follower other than the viewer: its sockets stay open but nothing answers (as a
    // partition looks). The view says so, and still comes within the deadline.
    const frozenName = all.members.find((m) => m.id !== all.leader && !m.self)!.name;
    await c.kill(c.members.findIndex((m) => m.name === frozenName), 'SIGSTOP');
    await eventually(async () => {
      const x = await view(viewer);
      assert.equal(x.members.find((m) => m.name === frozenName)!.reachable, false);
      assert.equal(x.members.filter((m) => m.reachable).length, 2);
      assert.equal(x.members.filter((m) => m.reachable && m.role === 'leader').length, 1);
    });
  } finally {
    await c.destroy();
    certs.cleanup();
  }
});
